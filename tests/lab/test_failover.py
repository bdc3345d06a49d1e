"""Moving the primary with clients writing: replica faults (a VM crash, a
network partition, a dropped slot), switchover and back, a VM crash of the
primary and failover.yml, the VM back and rejoin.yml (molecule scenario
`failover`, 1 master + 2 replicas, inventories/lab-scale).

A writer (bench/writer.py) commits numbered rows through the stable endpoint
at 50 rows/s the whole time; a row counts once its COMMIT returned.  Each
run's figures go to .lab/bench/<name>.json and .md.  The tests run in order
and each starts from where the previous left the cluster.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import (ADDRESSES, BENCH, ENDPOINT, PREFIX, PROJECT, ROOT, Writer, ansible_playbook, endpoint_holder,
                      no_secret_in, psql, verbose_run, vm_host, wait_until)

pytestmark = pytest.mark.failover

INV = ["-i", str(ROOT / "inventories" / "lab-scale")]
DSN = f"host={ENDPOINT} port=5433 user=supabase_admin dbname=postgres"
VMS = ("vm1", "vm2", "vm3")


def role(vm):
    """primary | standby | down, asked inside the VM."""
    res = psql(vm, "SELECT pg_is_in_recovery()", check=False, timeout=15)
    if res.returncode != 0:
        return "down"
    return "standby" if res.stdout.strip() == "t" else "primary"


def upstream(vm):
    return psql(vm, "SELECT sender_host || ' ' || status FROM pg_stat_wal_receiver")


def db_container(vm):
    return vm_host(vm).check_output("docker inspect -f '{{.Id}} {{.State.StartedAt}}' supabase-db")


def streams_from(vm, primary):
    return wait_until(lambda: upstream(vm) == f"{ADDRESSES[primary]} streaming", 60)


def timed_playbook(*args, timeout=600, env=None):
    start = time.monotonic()
    res = ansible_playbook(*INV, *args, timeout=timeout, env=env)
    return res, round(time.monotonic() - start, 1)


def test_refusals_change_nothing():
    before = {vm: db_container(vm) for vm in VMS}
    res, _ = timed_playbook("playbooks/switchover.yml", "-e", "new_primary=vm1")
    assert res.returncode != 0 and "vm1 is already the primary: name the standby to promote" in res.stdout
    res, _ = timed_playbook("playbooks/switchover.yml", "-e", "new_primary=vm9")
    assert res.returncode != 0 and "('vm9' is not a database host of this inventory)" in res.stdout
    res, _ = timed_playbook("playbooks/failover.yml")
    assert res.returncode != 0 and "vm1 still answer(s) as primary: this is not a failover situation" in res.stdout
    res, _ = timed_playbook("playbooks/rejoin.yml", "-e", "host=vm1")
    assert res.returncode != 0 and "vm1 is the current primary: rejoin a former one" in res.stdout
    assert {vm: db_container(vm) for vm in VMS} == before
    assert [role(vm) for vm in VMS] == ["primary", "standby", "standby"] and endpoint_holder(VMS) == "vm1"


def status(tmp_path, *extra, env=None):
    report = tmp_path / "status.json"
    res = ansible_playbook(*INV, "playbooks/status.yml", "-e", f"status_file={report}", *extra, timeout=180, env=env)
    return res, json.loads(report.read_text())


def rows_on(vm, report):
    """How many of a writer run's acknowledged rows the VM's database holds."""
    ids = ",".join(map(str, report["acked_ids"]))
    return int(psql(vm, f"SELECT count(*) FROM selfhost_writer WHERE id = ANY('{{{ids}}}'::bigint[])"))


def slot(name):
    """(active, retained bytes) of a slot on vm1, or None when it does not exist."""
    row = psql("vm1", "SELECT active, pg_current_wal_lsn() - restart_lsn FROM pg_replication_slots "
                      f"WHERE slot_name = '{name}'")
    return tuple(row.split("|")) if row else None


def test_a_replica_vm_killed_and_started_again_resumes_from_its_slot():
    vm3_db = db_container("vm3").split()[0]
    writer = Writer("replica_crash", DSN)
    subprocess.run(["docker", "kill", f"{PREFIX}-vm3"], check=True, capture_output=True, timeout=60)
    # The primary keeps the WAL vm3 has not received, in vm3's slot.
    wait_until(lambda: (slot("vm3") or ("t",))[0] == "f", 30)
    time.sleep(3)
    active, retained = slot("vm3")
    assert int(retained) > 0
    subprocess.run([sys.executable, str(ROOT / "lab/selfhost_lab.py"), "up", "vm3"], check=True,
                   capture_output=True, timeout=300)
    # No playbook: the same database container comes back and streams on from the slot.
    streams_from("vm3", "vm1")
    report = writer.stop()
    assert report["lost"] == 0, report["lost_ids"]
    assert db_container("vm3").split()[0] == vm3_db
    wait_until(lambda: rows_on("vm3", report) == report["acknowledged"], 30)
    assert slot("vm3")[0] == "t"


def test_a_partitioned_replica_catches_up_when_the_network_heals():
    writer = Writer("replica_partition", DSN)
    subprocess.run(["docker", "network", "disconnect", PREFIX, f"{PREFIX}-vm3"], check=True,
                   capture_output=True, timeout=60)
    try:
        time.sleep(5)
        # Cut off, vm3 receives nothing more, and claims nothing: vm1 keeps the endpoint.
        behind = psql("vm3", "SELECT count(*) FROM selfhost_writer")
        time.sleep(2)
        assert psql("vm3", "SELECT count(*) FROM selfhost_writer") == behind
        assert endpoint_holder(VMS) == "vm1"
    finally:
        subprocess.run([sys.executable, str(ROOT / "lab/selfhost_lab.py"), "up", "vm3"], check=True,
                       capture_output=True, timeout=300)
    streams_from("vm3", "vm1")
    report = writer.stop()
    assert report["lost"] == 0, report["lost_ids"]
    wait_until(lambda: rows_on("vm3", report) == report["acknowledged"], 60)


def test_a_dropped_slot_shows_in_status_and_site_yml_repairs_it(tmp_path):
    # The walsender holds the slot: end it, then drop the slot before vm3 reconnects.
    def dropped():
        psql("vm1", "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                    "WHERE slot_name = 'vm3' AND active_pid IS NOT NULL")
        return psql("vm1", "SELECT pg_drop_replication_slot('vm3')", check=False).returncode == 0
    wait_until(dropped, 30, interval=0.1)
    # At -vvv with a log file: no secret in what status.yml prints of an unhealthy cluster.
    verbose, env, log = verbose_run(tmp_path)
    res, report = status(tmp_path, *verbose, env=env)
    no_secret_in("status.yml", res, log)
    assert res.returncode != 0 and report["healthy"] is False
    assert "vm1: slot vm3 does not exist" in " | ".join(report["problems"]), report["problems"]
    assert "site.yml --tags replica" in res.stdout
    fixed = ansible_playbook(*INV, "site.yml", "--tags", "replica", timeout=900)
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    streams_from("vm3", "vm1")
    wait_until(lambda: (slot("vm3") or ("f",))[0] == "t", 60)
    res, report = status(tmp_path)
    assert res.returncode == 0 and report["healthy"] is True, report["problems"]


def test_switchover_and_back_loses_no_acknowledged_row(tmp_path):
    vm2_db = db_container("vm2")
    writer = Writer("switchover", DSN)
    there, there_s = timed_playbook("playbooks/switchover.yml", "-e", "new_primary=vm2")
    assert there.returncode == 0, there.stdout[-3000:]
    assert role("vm2") == "primary" and endpoint_holder(VMS) == "vm2"
    # Promoted in place: the same container, never restarted.
    assert db_container("vm2") == vm2_db
    streams_from("vm1", "vm2")
    streams_from("vm3", "vm2")
    # The demoted primary keeps no slot for its successor: nothing would use it, and it pins WAL.
    assert psql("vm1", "SELECT count(*) FROM pg_replication_slots") == "0"
    # status.yml checks the hosts as they are, and says the inventory is behind.
    res, report = status(tmp_path)
    assert res.returncode == 0 and report["healthy"] is True, report["problems"]
    assert report["primary"] == "vm2" and "vm2 is the primary, the inventory names vm1" in report["notes"][0]
    assert "NOTE: vm2 is the primary" in res.stdout
    # The inventory still names vm1 the master: site.yml refuses and says what to change.
    guard, _ = timed_playbook("site.yml", "--check")
    assert guard.returncode != 0
    assert "The inventory is out of date: vm2 is the primary now" in guard.stdout
    back, back_s = timed_playbook("playbooks/switchover.yml", "-e", "new_primary=vm1")
    assert back.returncode == 0, back.stdout[-3000:]
    report = writer.stop({"switchover_to_vm2": there_s, "switchover_back_to_vm1": back_s})
    assert report["acknowledged"] > 0 and report["found"] == report["acknowledged"]
    assert report["lost"] == 0, report["lost_ids"]
    assert role("vm1") == "primary" and endpoint_holder(VMS) == "vm1"
    streams_from("vm2", "vm1")
    streams_from("vm3", "vm1")
    assert psql("vm2", "SELECT count(*) FROM pg_replication_slots") == "0"
    assert psql("vm1", "SELECT slot_name FROM pg_replication_slots ORDER BY 1") == "vm2\nvm3"


def test_an_interrupted_switchover_is_finished_by_running_it_again(tmp_path):
    proc = subprocess.Popen(["ansible-playbook", *INV, "playbooks/switchover.yml", "-e", "new_primary=vm2"],
                            cwd=ROOT, env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # Killed right after the old primary stopped.
        wait_until(lambda: vm_host("vm1").run("docker inspect -f '{{.State.Running}}' supabase-db").stdout.strip()
                   == "false", 180)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    half = vm_host("vm3").run("cat /opt/supabase/state/operation.json")
    assert half.succeeded and '"to": "vm2"' in half.stdout
    refused, _ = timed_playbook("playbooks/failover.yml")
    assert refused.returncode != 0
    assert "A switchover from vm1 to vm2 is half done" in refused.stdout
    # The run that finishes it handles the replication and admin passwords: at -vvv, none printed.
    verbose, env, log = verbose_run(tmp_path)
    res, _ = timed_playbook("playbooks/switchover.yml", "-e", "new_primary=vm2", *verbose, env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    no_secret_in("switchover.yml", res, log)
    assert role("vm2") == "primary" and endpoint_holder(VMS) == "vm2"
    streams_from("vm1", "vm2")
    streams_from("vm3", "vm2")
    assert not vm_host("vm2").run("test -e /opt/supabase/state/operation.json").succeeded


def db_in(vm, action):
    subprocess.run(["docker", "exec", f"{PREFIX}-{vm}", "docker", action, "supabase-db"], check=True,
                   capture_output=True, timeout=120)


def test_failover_after_the_primary_vm_dies_loses_at_most_what_it_reports():
    primary = next(vm for vm in VMS if role(vm) == "primary")
    # One replica's database is down too: it is neither promoted nor taken for a former primary.
    down = [vm for vm in VMS if vm != primary][-1]
    db_in(down, "stop")
    writer = Writer("failover", DSN)
    subprocess.run(["docker", "kill", f"{PREFIX}-{primary}"], check=True, capture_output=True, timeout=60)
    crashed = time.time()
    res, seconds = timed_playbook("playbooks/failover.yml")
    assert res.returncode == 0, res.stdout[-4000:]
    match = re.search(r"Promoting (vm\d), which received WAL up to ([0-9A-F]+/[0-9A-F]+)", res.stdout)
    assert match, res.stdout[-3000:]
    new = match.group(1)
    assert new != primary and new != down and role(new) == "primary" and endpoint_holder(VMS) == new
    assert not vm_host(down).file(f"{PROJECT}/state/fenced").exists, f"{down}, a standby, was fenced"
    said = " ".join(res.stdout.replace("\\\n", " ").split())
    assert f"{down}: a standby whose database is down, left as it is" in said, res.stdout[-3000:]
    # Once its database runs again, rejoin.yml points it at the new primary.
    db_in(down, "start")
    back, _ = timed_playbook("playbooks/rejoin.yml", "-e", f"host={down}")
    assert back.returncode == 0, back.stdout[-3000:]
    streams_from(down, new)
    report = writer.stop({"failover_playbook": seconds})
    after = [g for g in report["gaps"] if g["first_success_after"] / 1000 > crashed]
    assert after, "the writer never wrote again after the crash"
    report["failover_start_to_first_write_s"] = round(after[0]["first_success_after"] / 1000 - crashed, 1)
    (BENCH / "failover.json").write_text(json.dumps(report))
    # Lost rows, if any, are one run of the last rows the dead primary acknowledged.
    if report["lost"]:
        lost, acked = report["lost_ids"], report["acked_ids"]
        assert acked.index(max(lost)) - acked.index(min(lost)) + 1 == len(lost), lost
    other = next(vm for vm in VMS if vm not in (primary, new))
    streams_from(other, new)


def test_the_old_primary_comes_back_as_a_standby_with_rejoin(tmp_path):
    old = next(vm for vm in VMS if subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", f"{PREFIX}-{vm}"],
        capture_output=True, text=True).stdout.strip() == "false")
    new = next(vm for vm in VMS if vm != old and role(vm) == "primary")
    subprocess.run([sys.executable, str(ROOT / "lab/selfhost_lab.py"), "up", old], check=True, capture_output=True,
                   timeout=300)
    # Its database comes back by itself, but not as a primary: it crashed, and a failover may
    # have replaced it, so it waits read-only with no upstream, away from clients (no endpoint).
    wait_until(lambda: role(old) != "down", 60)
    assert role(old) == "standby" and endpoint_holder(VMS) == new
    res = psql(old, "CREATE TABLE written_on_the_old_primary (n int)", check=False)
    assert res.returncode != 0 and "read-only transaction" in res.stderr
    assert psql(old, "SELECT count(*) FROM pg_stat_wal_receiver") == "0"
    res, report = status(tmp_path)
    assert res.returncode != 0 and any(old in problem for problem in report["problems"]), report["problems"]
    # Should someone promote it by hand, there are two primaries: status.yml calls it split
    # brain, and switchover.yml refuses to act.
    psql(old, "SELECT pg_promote(true, 60)")
    assert role(old) == "primary"
    res, report = status(tmp_path)
    assert res.returncode != 0 and "split brain" in " | ".join(report["problems"]), report["problems"]
    third = next(vm for vm in VMS if vm not in (old, new))
    refused, _ = timed_playbook("playbooks/switchover.yml", "-e", f"new_primary={third}")
    assert refused.returncode != 0 and "all answer as primary" in refused.stdout, refused.stdout[-3000:]
    assert role(third) == "standby" and role(new) == "primary"
    # Both on timeline 2: rejoin.yml cannot tell which is current until the wrong one is stopped.
    db_in(old, "stop")
    # The runs that rewind or clone it handle the passwords: at -vvv, none printed.
    verbose, env, log = verbose_run(tmp_path)
    res, _ = timed_playbook("playbooks/rejoin.yml", "-e", f"host={old}", *verbose, env=env)
    if res.returncode != 0:
        confirm = re.search(r"confirm with -e discard_wal=(\S+)", res.stdout)
        assert confirm, res.stdout[-3000:]
        res, _ = timed_playbook("playbooks/rejoin.yml", "-e", f"host={old}", "-e", f"discard_wal={confirm.group(1)}",
                                *verbose, env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    no_secret_in("rejoin.yml", res, log)
    assert role(old) == "standby"
    streams_from(old, new)
    probe = time.time_ns()
    psql(new, f"CREATE TABLE IF NOT EXISTS rejoin_probe (n bigint); INSERT INTO rejoin_probe VALUES ({probe})")
    wait_until(lambda: psql(old, f"SELECT count(*) FROM rejoin_probe WHERE n = {probe}", check=False).stdout.strip()
               == "1", 30)
