"""1 master + 2 replicas (molecule scenario `scale`): capacity sized from the
inventory, retiring a replica, adding one with --limit without touching the others."""

import os
import shutil
import uuid

import pytest

from conftest import (ADDRESSES, PROJECT, ROOT, ansible_playbook, inventory_copy, psql, vm_host, vm_state,
                      wait_until)

pytestmark = [pytest.mark.scale]
SCALE = "inventories/lab-scale"
STREAMING = ("SELECT string_agg(application_name, ',' ORDER BY application_name) FROM pg_stat_replication "
             "WHERE state = 'streaming'")


def vm2_named_master(groups):
    """Make an inventory out of date: it names vm2 the master and vm1 a replica."""
    groups["master"]["hosts"], groups["replica"]["hosts"] = (
        {"vm2": groups["replica"]["hosts"].pop("vm2")}, {**groups["replica"]["hosts"], **groups["master"]["hosts"]})


@pytest.fixture(scope="module", autouse=True)
def three_vms_deployed():
    for vm in ("vm1", "vm2", "vm3"):
        if not vm_host(vm).run("docker inspect supabase-db").succeeded:
            pytest.fail(f"no database on {vm}: run `molecule converge -s scale` first")


def hba(vm="vm1"):
    return vm_host(vm).file(f"{PROJECT}/config/pg_hba.conf").content_string


def reaches_vm1_database(vm):
    """Whether a TCP connection from vm to vm1's database port opens (the firewall drops it otherwise)."""
    script = ("import socket\ntry:\n    socket.create_connection(('%s', 5433), timeout=2)\n    print('open')\n"
              "except OSError as e:\n    print(type(e).__name__)" % ADDRESSES["vm1"])
    return vm_host(vm).check_output(f"python3 -c \"{script}\"") == "open"


def test_both_replicas_stream_and_serve_what_the_master_writes():
    assert wait_until(lambda: psql("vm1", STREAMING) == "vm2,vm3", timeout=30)[0]
    slots = psql("vm1", "SELECT string_agg(slot_name || ':' || active, ',' ORDER BY slot_name) FROM pg_replication_slots "
                        "WHERE slot_type = 'physical'")
    assert slots == "vm2:true,vm3:true"
    psql("vm1", "CREATE TABLE IF NOT EXISTS scale_probe(token text primary key)")
    token = uuid.uuid4().hex
    psql("vm1", f"INSERT INTO scale_probe VALUES ('{token}')")
    for vm in ("vm2", "vm3"):
        wait_until(lambda vm=vm: psql(vm, f"SELECT count(*) FROM scale_probe WHERE token = '{token}'") == "1",
                   timeout=5)


def test_a_postgresql_15_cluster_stays_on_15_when_the_pin_moves_to_17():
    """Scenario failover makes its cluster with the PostgreSQL 15 image (SELFHOST_LAB_PG_MAJOR),
    as the previous pin did: site.yml with the current pin (a 17 image for new clusters)
    keeps it on 15, changing nothing; an inventory with no 15 image is refused."""
    if os.environ.get("SELFHOST_LAB_PG_MAJOR") != "15":
        pytest.skip("this lab's cluster was made on PostgreSQL 17 (scenario failover makes one on 15)")
    vms = ("vm1", "vm2", "vm3")
    before = {vm: vm_state(vm) for vm in vms}
    res = ansible_playbook("site.yml", "-i", SCALE, "-e", "cluster_image_db=selfhost-lab/postgres:17-standin")
    assert res.returncode == 0, res.stdout[-3000:]
    for vm in vms:
        assert psql(vm, "SHOW server_version_num").startswith("15"), vm
        image = vm_host(vm).check_output("docker inspect -f '{{.Config.Image}}' supabase-db")
        assert image == "selfhost-lab/postgres:15-standin", vm
    assert {vm: vm_state(vm) for vm in vms} == before, "the re-run under the new pin changed a VM"
    refused = ansible_playbook("site.yml", "-i", SCALE, "-e", "cluster_image_db=selfhost-lab/postgres:17-standin",
                               "-e", "cluster_image_db_15=selfhost-lab/postgres:17-standin")
    assert refused.returncode != 0
    assert "The cluster's data is PostgreSQL 15, but cluster_image_db" in refused.stdout
    assert "site.yml never upgrades the data behind your back" in refused.stdout
    assert {vm: vm_state(vm) for vm in vms} == before


def test_debian_12_and_debian_13_vms_serve_in_one_cluster():
    """The lab's VMs run Debian 13, with Debian's own Compose v2 package; scenario failover
    makes vm3 a Debian 12 VM (SELFHOST_LAB_OLD_VMS), which deploys and streams beside them."""
    old = set(os.environ.get("SELFHOST_LAB_OLD_VMS", "").split())
    if not old:
        pytest.skip("every VM of this lab runs Debian 13 (scenario failover has a Debian 12 VM)")
    vms = ("vm1", "vm2", "vm3")
    releases = {vm: vm_host(vm).file("/etc/debian_version").content_string.split(".")[0] for vm in vms}
    assert releases == {vm: "12" if vm in old else "13" for vm in vms}
    for vm in vms:
        if vm not in old:
            package = vm_host(vm).package("docker-compose")
            assert package.is_installed and package.version.startswith("2."), vm
        assert vm_host(vm).check_output("docker compose version --short").startswith("2."), vm
    assert wait_until(lambda: psql("vm1", STREAMING) == "vm2,vm3", timeout=30)[0]


def test_replication_capacity_grows_with_the_inventory():
    # 10 + 2 per replica senders, 5 + 2 per replica slots (the image's 5 are realtime's and analytics').
    assert psql("vm1", "SHOW max_wal_senders") == "14"
    assert psql("vm1", "SHOW max_replication_slots") == "9"


def test_retire_a_replica_then_add_it_back_with_limit_touching_nothing_else():
    vm1_before, vm2_before = vm_state("vm1"), vm_state("vm2")
    assert ADDRESSES["vm3"] in hba()

    # The inventory names vm2 the master (out of date, as after a switchover it was not told
    # of): the playbook asks the hosts and works on vm1, the primary that answers.
    inventory = inventory_copy(vm2_named_master, source=ROOT / SCALE)
    try:
        res = ansible_playbook("playbooks/remove_replica.yml", "-i", str(inventory), "-e", "replica=vm3")
    finally:
        shutil.rmtree(inventory.parent)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert psql("vm1", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'vm3'") == "0"
    assert ADDRESSES["vm3"] not in hba(), "the retired replica may still replicate"
    assert not reaches_vm1_database("vm3"), "vm1's firewall still lets the retired replica in"
    assert not vm_host("vm3").run("docker inspect supabase-db").succeeded
    # Nothing of the cluster is left on the retired VM: no data, no .env, no keys.
    left = [path for path in (".env", "volumes/db/data/PG_VERSION", "volumes/db/pgsodium_root.key",
                              "volumes/db/tls/server.key", "volumes/api/envoy/lds.yaml")
            if vm_host("vm3").file(f"{PROJECT}/{path}").exists]
    assert left == []
    # Nor keepalived, which could still answer VRRP for the endpoint address.
    assert wait_until(lambda: not vm_host("vm3").run("pgrep -x keepalived").succeeded, timeout=10)[0]
    assert not vm_host("vm3").file("/etc/keepalived/keepalived.conf").exists
    assert psql("vm1", STREAMING) == "vm2"
    assert vm_state("vm2") == vm2_before

    # Check mode predicts the re-add and changes nothing anywhere.
    states = vm_state("vm1"), vm_state("vm2"), vm_state("vm3")
    res = ansible_playbook("site.yml", "-i", SCALE, "--limit", "vm3", "--check")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert (vm_state("vm1"), vm_state("vm2"), vm_state("vm3")) == states

    # Add it back (as an operator adds a new VM): only vm3 is in the play.
    res = ansible_playbook("site.yml", "-i", SCALE, "--limit", "vm3")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert wait_until(lambda: psql("vm1", STREAMING) == "vm2,vm3", timeout=30)[0]
    assert psql("vm3", "SELECT pg_is_in_recovery()") == "t"
    assert reaches_vm1_database("vm3")
    assert wait_until(lambda: vm_host("vm3").run("pgrep -x keepalived").succeeded, timeout=10)[0]
    # The master's files (pg_hba.conf rendered back identical) and containers, and vm2, are as before.
    assert vm_state("vm1") == vm1_before
    assert vm_state("vm2") == vm2_before


def test_two_replicas_with_one_slot_name_are_refused_before_any_change():
    before = vm_state("vm1"), vm_state("vm2"), vm_state("vm3")

    def shared_slot(groups):
        groups["replica"]["hosts"]["vm3"]["replica_slot_name"] = "vm2"

    inventory = inventory_copy(shared_slot, source=ROOT / SCALE)
    try:
        res = ansible_playbook("site.yml", "-i", str(inventory))
    finally:
        shutil.rmtree(inventory.parent)
    assert res.returncode != 0
    assert "Two replicas share a slot name (vm2: vm2, vm3: vm2)" in res.stdout, res.stdout[-2000:]
    assert (vm_state("vm1"), vm_state("vm2"), vm_state("vm3")) == before


def test_remove_replica_refuses_bad_input_before_any_change():
    before = vm_state("vm1"), vm_state("vm2"), vm_state("vm3")
    cases = [([], "Say which replica to retire with -e replica=HOST"),
             (["-e", "replica=vm1"], '"vm1" is not in it'),
             (["-e", "replica=vm9"], '"vm9" is not in it')]
    for extra, message in cases:
        res = ansible_playbook("playbooks/remove_replica.yml", "-i", SCALE, *extra)
        assert res.returncode != 0 and message in res.stdout, res.stdout[-2000:]

    # An inventory that is out of date (it calls the primary a replica): refused.
    inventory = inventory_copy(vm2_named_master, source=ROOT / SCALE)
    try:
        res = ansible_playbook("playbooks/remove_replica.yml", "-i", str(inventory), "-e", "replica=vm1")
    finally:
        shutil.rmtree(inventory.parent)
    assert res.returncode != 0, res.stdout[-2000:]
    assert "vm1 answers as a PRIMARY or holds a primary's data directory" in res.stdout, res.stdout[-2000:]
    assert (vm_state("vm1"), vm_state("vm2"), vm_state("vm3")) == before

    # No primary answers (its database is down): the slot could not be dropped, so nothing changes.
    vm_host("vm1").run("docker stop supabase-db")
    try:
        before = vm_state("vm2"), vm_state("vm3")
        res = ansible_playbook("playbooks/remove_replica.yml", "-i", SCALE, "-e", "replica=vm3")
        assert res.returncode != 0 and "No database host answers as the primary" in res.stdout, res.stdout[-2000:]
        assert (vm_state("vm2"), vm_state("vm3")) == before
        assert vm_host("vm3").file(f"{PROJECT}/volumes/db/data/PG_VERSION").exists
    finally:
        vm_host("vm1").run("docker start supabase-db")
        wait_until(lambda: psql("vm1", STREAMING, check=False).stdout.strip() == "vm2,vm3", timeout=120)
