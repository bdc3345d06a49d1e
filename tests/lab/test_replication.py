"""What a user checks after `site.yml` deployed 1 master + 1 replica in the lab."""

import os
import subprocess
import time
import uuid

import psycopg2
import psycopg2.extras
import pytest

from conftest import ADDRESSES, ENDPOINT, PREFIX, PROJECT, psql, secret, vm_host, wait_until

pytestmark = [pytest.mark.default, pytest.mark.usefixtures("lab_up")]


def test_the_replica_streams_from_the_master():
    rows = psql("vm1", "SELECT application_name, client_addr, state FROM pg_stat_replication")
    assert rows == f"vm2|{ADDRESSES['vm2']}|streaming"


def test_the_replicas_slot_is_active_on_the_master():
    assert psql("vm1", "SELECT slot_type, active FROM pg_replication_slots WHERE slot_name = 'vm2'") == "physical|t"


def test_a_row_written_on_the_master_is_read_on_the_replica_within_5_seconds():
    psql("vm1", "CREATE TABLE IF NOT EXISTS lab_probe(token text primary key, at timestamptz default now())")
    wait_until(lambda: psql("vm2", "SELECT to_regclass('lab_probe') IS NOT NULL") == "t", timeout=30)
    token = uuid.uuid4().hex
    psql("vm1", f"INSERT INTO lab_probe(token) VALUES ('{token}')")
    _, seconds = wait_until(lambda: psql("vm2", f"SELECT count(*) FROM lab_probe WHERE token = '{token}'") == "1",
                            timeout=5)
    print(f"row visible on vm2 after {seconds:.2f}s")


def test_the_replica_refuses_writes():
    res = psql("vm2", "CREATE TABLE should_fail(x int)", check=False)
    assert res.returncode != 0
    assert "read-only transaction" in res.stderr
    assert psql("vm2", "SELECT pg_is_in_recovery()") == "t"


def test_the_replica_serves_reads_despite_the_images_hot_standby_off():
    assert psql("vm2", "SHOW hot_standby") == "on"
    # The image's own file still says off: our config overrides it.
    assert "hot_standby = off" in vm_host("vm2").check_output(
        "docker exec supabase-db cat /etc/postgresql-custom/wal-g.conf")


def test_replication_is_refused_from_an_address_that_is_not_a_replica():
    """The lab machine itself (the lab network's gateway address) is on the private network but is no replica."""
    with pytest.raises(psycopg2.OperationalError) as err:
        psycopg2.connect(host=ADDRESSES["vm1"], port=5433, user="supabase_replication_admin",
                         password=secret("replication_password"), connect_timeout=5,
                         connection_factory=psycopg2.extras.PhysicalReplicationConnection)
    assert "no pg_hba.conf entry for replication connection" in str(err.value)


def test_replication_is_accepted_from_the_replica_address():
    """The control for the test above: same role and password, from vm2."""
    script = ("import os, psycopg2, psycopg2.extras; "
              f"c = psycopg2.connect(host='{ADDRESSES['vm1']}', port=5433, user='supabase_replication_admin', "
              "password=os.environ['PGPASSWORD'], connection_factory=psycopg2.extras.PhysicalReplicationConnection); "
              "cur = c.cursor(); cur.execute('IDENTIFY_SYSTEM'); print(cur.fetchone()[0])")
    env = dict(os.environ, PGPASSWORD=secret("replication_password"))
    res = subprocess.run(["docker", "exec", "-e", "PGPASSWORD", f"{PREFIX}-vm2", "python3", "-c", script],
                         env=env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == psql("vm1", "SELECT system_identifier FROM pg_control_system()")


def test_the_replica_carries_the_masters_pgsodium_key():
    key = "docker exec supabase-db cat /etc/postgresql-custom/pgsodium_root.key"
    master_key = vm_host("vm1").check_output(key)
    assert len(master_key) == 64
    assert vm_host("vm2").check_output(key) == master_key


def test_secrets_on_the_vm_are_readable_by_root_only():
    env = vm_host("vm1").file(f"{PROJECT}/.env")
    assert env.mode == 0o600 and env.user == "root"
    # What it holds, as Compose reads it: test_service_roles.py.
    assert "\nPOSTGRES_PASSWORD=" in env.content_string


def test_the_database_is_published_on_the_private_address_and_the_endpoint():
    """Every host alike: replication (5433) and read-only (5432) on its own address,
    direct connections on the endpoint address, which only the primary holds."""
    for vm in ("vm1", "vm2"):
        ports = set(vm_host(vm).check_output("docker port supabase-db").split("\n"))
        assert ports == {f"5432/tcp -> {ADDRESSES[vm]}:5433", f"5432/tcp -> {ADDRESSES[vm]}:5432",
                         f"5432/tcp -> {ENDPOINT}:5433"}
    holder = [vm for vm in ("vm1", "vm2") if f" {ENDPOINT}/" in vm_host(vm).check_output("ip -4 -o addr show")]
    assert holder == ["vm1"]


def test_replication_capacity_is_sized_from_the_inventory():
    # 1 replica: 10 + 2 senders, 5 + 2 slots, the same on both sides.
    for vm in ("vm1", "vm2"):
        assert psql(vm, "SHOW max_wal_senders") == "12"
        assert psql(vm, "SHOW max_replication_slots") == "7"
        assert psql(vm, "SHOW wal_log_hints") == "on"
    assert psql("vm1", "SHOW wal_level") == "logical"


def test_the_replica_survives_a_restart_and_resumes_streaming():
    vm_host("vm2").check_output("docker restart supabase-db")
    wait_until(lambda: psql("vm1", "SELECT state FROM pg_stat_replication WHERE application_name='vm2'",
                            check=False).stdout.strip() == "streaming", timeout=60, interval=1)
    token = f"after-restart-{time.time_ns()}"
    psql("vm1", f"INSERT INTO lab_probe(token) VALUES ('{token}')")
    wait_until(lambda: psql("vm2", f"SELECT count(*) FROM lab_probe WHERE token = '{token}'") == "1", timeout=5)
