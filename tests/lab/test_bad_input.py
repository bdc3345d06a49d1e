"""Bad input is refused before anything changes, with a message that names the
input and says what to put.  Each case: (what is wrong, how, the message).

The cases run side by side, three at a time (none may change a thing); the
managed files and containers of both VMs are checksummed before and after
them all.
"""

import shutil

import pytest

from conftest import (ADDRESSES, INVENTORY, NET, PROJECT, ansible_playbook, inventory_copy, psql, refusals, vm_host,
                      vm_state, wait_until)

pytestmark = [pytest.mark.default, pytest.mark.usefixtures("lab_up")]


def no_master(groups):
    groups["replica"]["hosts"].update(groups["master"]["hosts"])
    groups["master"]["hosts"] = {}


def two_masters(groups):
    groups["master"]["hosts"].update(groups["replica"]["hosts"])
    groups["replica"]["hosts"] = {}


def replica_address(addr):
    def edit(groups):
        groups["replica"]["hosts"]["vm2"]["cluster_private_address"] = addr
    return edit


def slot_name(name):
    def edit(groups):
        groups["replica"]["hosts"]["vm2"]["replica_slot_name"] = name
    return edit


def same_address(groups):
    groups["replica"]["hosts"]["vm2"]["cluster_private_address"] = ADDRESSES["vm1"]


CASES = [
    ("replication password too short", None, ["-e", "cluster_replication_password=tooshort"],
     "cluster_replication_password must be a string of at least 16 characters"),
    ("replication password empty", None, ["-e", "cluster_replication_password="],
     "cluster_replication_password must be a string of at least 16 characters"),
    ("postgres password too short", None, ["-e", "cluster_postgres_password=abc"],
     "cluster_postgres_password must be a string of at least 16 characters"),
    ("master group empty", no_master, [], "The inventory group 'master' must hold exactly one host"),
    ("master group holds two hosts", two_masters, [], "it holds 2: vm1, vm2"),
    ("replica address not on the replica", replica_address(f"{NET}.99"), [],
     f"cluster_private_address for vm2 is '{NET}.99', which is not an address of this host"),
    ("replica address not an address", replica_address("vm2.lab"), [],
     "cluster_private_address for vm2 is 'vm2.lab'"),
    ("replication port out of range", None, ["-e", "cluster_replication_port=70000"],
     "cluster_replication_port must be a TCP port between 1 and 65535"),
    ("slot name PostgreSQL rejects", slot_name("Replica-2"), [],
     "replica_slot_name of vm2 ('Replica-2') is not a name PostgreSQL accepts for a slot"),
    ("slot name too long", slot_name("s" * 64), [],
     "use only lower-case letters, digits and underscores, at most 63"),
    ("replica given the master's address", same_address, [], f"cluster_private_address for vm2 is '{ADDRESSES['vm1']}'"),
    ("replica port zero", None, ["-e", "cluster_replica_port=0"],
     "cluster_replica_port must be a TCP port between 1 and 65535"),
    ("endpoint address missing with a replica", None, ["-e", "cluster_endpoint_address="],
     "cluster_endpoint_address is not set"),
    ("endpoint address a name", None, ["-e", "cluster_endpoint_address=vip.lab"],
     "it must be an IPv4 address, not a name"),
    ("endpoint address a host's address", None, ["-e", f"cluster_endpoint_address={ADDRESSES['vm1']}"],
     "is already a host's cluster_private_address"),
    ("endpoint prefix out of range", None, ["-e", "cluster_endpoint_prefix=40"],
     "cluster_endpoint_prefix must be 8-32 (got 40)"),
    ("VRRP router id out of range", None, ["-e", "cluster_endpoint_vrid=300"], "cluster_endpoint_vrid 1-255 (got 300)"),
    ("CA certificate without its key", None, ["-e", "cluster_tls_ca_cert=/etc/hostname"],
     "Set both cluster_tls_ca_cert and cluster_tls_ca_key"),
    ("CA certificate path that does not exist", None,
     ["-e", "cluster_tls_ca_cert=/nonexistent/ca.crt", "-e", "cluster_tls_ca_key=/nonexistent/ca.key"],
     "cluster_tls_ca_cert /nonexistent/ca.crt is not a file on the controller"),
    ("certificate validity too short", None, ["-e", "cluster_tls_days=1"], "cluster_tls_days is 1"),
    ("Kong certificate without its key", None, ["-e", "cluster_api_tls_cert=/etc/hostname"],
     "Set both cluster_api_tls_cert and cluster_api_tls_key"),
    ("Kong key path not on the controller", None,
     ["-e", "cluster_api_tls_cert=/etc/hostname", "-e", "cluster_api_tls_key=/nonexistent/api.key"],
     "cluster_api_tls_key /nonexistent/api.key is not a file on the controller"),
    ("Kong TLS without a CA or a certificate", None, ["-e", "cluster_tls=false", "-e", "cluster_api_tls=true"],
     "cluster_api_tls is on but cluster_tls is off"),
    ("an API gateway the collection does not render", None, ["-e", "master_gateway=traefik"],
     "master_gateway is 'traefik': set it to envoy"),
    ("admin network without a prefix length", None, ["-e", '{"cluster_admin_cidrs": ["192.0.2.7"]}'],
     "cluster_admin_cidrs holds '192.0.2.7'"),
    ("client network that is a name", None, ["-e", '{"cluster_client_cidrs": ["office.example.com/24"]}'],
     "cluster_client_cidrs holds 'office.example.com/24'"),
    ("renewal threshold zero", None, ["-e", "cluster_tls_renew_days=0"], "cluster_tls_renew_days is 0"),
    ("TLS switch not a boolean", None, ["-e", "cluster_tls=maybe"], "argument 'cluster_tls' is of type str"),
    ("certificate validity not a number", None, ["-e", "cluster_tls_days=soon"],
     "argument 'cluster_tls_days' is of type str"),
    ("wait timeout not a number", None, ["-e", "cluster_wait_timeout=long"],
     "argument 'cluster_wait_timeout' is of type str"),
    ("secret of your own with a newline", None, ["-e", '{"cluster_supabase_secrets": {"SMTP_PASS": "one\\ntwo=x"}}'],
     "SMTP_PASS holds a newline"),
    ("postgres password with URL syntax", None, ["-e", '{"cluster_postgres_password": "abcdefgh@ijklmnop/q#r"}'],
     "cluster_postgres_password holds '@', '/', '#': it is written into the services' connection URLs"),
    ("S3 secret with a newline", None, ["-e", '{"backup_s3": {"bucket": "b", "endpoint": "s3.example.com", '
                                        '"region": "r", "key": "k", "key_secret": "abc\\nrepo1-path=/x"}}'],
     "backup_s3.key_secret holds a newline"),
    ("postgres password the public demo value", None,
     ["-e", "cluster_postgres_password=your-super-secret-and-long-postgres-password"], "public demo value"),
]


def refuse(case):
    what, edit, extra, _ = case
    inventory = inventory_copy(edit) if edit else INVENTORY
    try:
        return ansible_playbook("site.yml", "-i", str(inventory), *extra)
    finally:
        if edit:
            shutil.rmtree(inventory.parent)


@pytest.fixture(scope="module")
def refused():
    """Every case's run, side by side (each is refused before it changes anything), and the
    VMs' state before and after them all."""
    return refusals(CASES, refuse, ("vm1", "vm2"))


@pytest.mark.parametrize("what, edit, extra, message", CASES, ids=[c[0] for c in CASES])
def test_refused_before_any_change(refused, what, edit, extra, message):
    results, before, after = refused
    res = results[what]
    assert res.returncode != 0, f"{what} was accepted"
    assert message in res.stdout, res.stdout[-3000:]
    for password in [e.split("=", 1)[1] for e in extra if "password=" in e]:
        assert not password or password not in res.stdout + res.stderr, "a refused password was printed"
    assert after == before, "a refused run changed a VM's files or containers"


@pytest.fixture()
def listener_on_vm2():
    """Some other program holding vm2's address, port 5499."""
    host = vm_host("vm2")
    host.check_output("docker exec -d supabase-db true")  # the db runs; the port is another one
    host.run(f"sh -c 'nohup python3 -m http.server --bind {ADDRESSES['vm2']} 5499 >/dev/null 2>&1 &'")
    wait_until(lambda: host.socket(f"tcp://{ADDRESSES['vm2']}:5499").is_listening, timeout=10)
    yield
    host.run(f"pkill -f 'http.server --bind {ADDRESSES['vm2']} 5499'")


def test_a_port_in_use_is_refused(listener_on_vm2):
    before = vm_state("vm2")
    res = ansible_playbook("site.yml", "-i", "inventories/lab", "--tags", "replica",
                           "-e", "cluster_replica_port=5499")
    assert res.returncode != 0
    assert f"Port 5499 on {ADDRESSES['vm2']} (vm2) is already in use by another program" in res.stdout
    assert "cluster_replica_port" in res.stdout
    assert vm_state("vm2") == before


@pytest.fixture()
def foreign_cluster_on_vm2():
    """vm2's data directory replaced by a cluster of another system (restored after)."""
    host = vm_host("vm2")
    data = f"{PROJECT}/volumes/db/data"
    host.check_output("docker stop supabase-db")
    host.check_output(f"mv {data} {data}.saved && mkdir -m 0700 {data} && chown 101:102 {data}")
    host.check_output(f"docker run --rm -u postgres -v {data}:/var/lib/postgresql/data --entrypoint initdb "
                      "selfhost-lab/postgres:17-standin -D /var/lib/postgresql/data")
    yield data
    host.check_output(f"rm -rf {data} && mv {data}.saved {data} && docker start supabase-db")
    wait_until(lambda: psql("vm1", "SELECT state FROM pg_stat_replication WHERE application_name='vm2'",
                            check=False).stdout.strip() == "streaming", timeout=60, interval=1)


def test_a_data_directory_of_another_system_is_refused(foreign_cluster_on_vm2):
    host = vm_host("vm2")
    sysid = host.check_output(f"docker run --rm -v {foreign_cluster_on_vm2}:/d --entrypoint pg_controldata "
                              "selfhost-lab/postgres:17-standin /d | grep 'system identifier'")
    before = vm_state("vm2")
    res = ansible_playbook("site.yml", "-i", "inventories/lab", "--tags", "replica")
    assert res.returncode != 0
    assert "refusing to overwrite another cluster" in res.stdout and "force: true" in res.stdout
    assert vm_state("vm2") == before
    assert host.check_output(f"docker run --rm -v {foreign_cluster_on_vm2}:/d --entrypoint pg_controldata "
                             "selfhost-lab/postgres:17-standin /d | grep 'system identifier'") == sysid
