"""Moving the primary with clients writing: switchover and back, a VM crash
and failover.yml, the VM back and rejoin.yml (molecule scenario `failover`,
1 master + 2 replicas, inventories/lab-scale).

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

from conftest import ADDRESSES, PREFIX, ROOT, ansible_playbook, psql, secret, vm_host, wait_until

pytestmark = pytest.mark.failover

INV = ["-i", str(ROOT / "inventories" / "lab-scale")]
ENDPOINT = "172.30.0.10"
DSN = f"host={ENDPOINT} port=5433 user=supabase_admin dbname=postgres"
BENCH = ROOT / ".lab" / "bench"
VMS = ("vm1", "vm2", "vm3")


class Writer:
    """bench/writer.py in the background; stop() returns its verified report."""

    def __init__(self, name, rate=50):
        BENCH.mkdir(parents=True, exist_ok=True)
        self.out = BENCH / f"{name}.json"
        self.env = dict(os.environ, PGPASSWORD=secret("postgres_password"))
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench/writer.py"), "run", "--dsn", DSN,
                                      "--out", str(self.out), "--rate", str(rate)], env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(3)  # some rows before the event

    def stop(self, phases=None):
        time.sleep(3)  # some rows after it
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, out
        args = [sys.executable, str(ROOT / "bench/writer.py"), "verify", "--dsn", DSN, "--run", str(self.out)]
        if phases:
            phase_file = self.out.with_suffix(".phases.json")
            phase_file.write_text(json.dumps(phases))
            args += ["--phases", str(phase_file)]
        res = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        return json.loads(self.out.read_text())


def role(vm):
    """primary | standby | down, asked inside the VM."""
    res = psql(vm, "SELECT pg_is_in_recovery()", check=False, timeout=15)
    if res.returncode != 0:
        return "down"
    return "standby" if res.stdout.strip() == "t" else "primary"


def upstream(vm):
    return psql(vm, "SELECT sender_host || ' ' || status FROM pg_stat_wal_receiver")


def endpoint_holder():
    for vm in VMS:
        res = vm_host(vm).run("ip -4 -o addr show")
        if res.succeeded and f" {ENDPOINT}/" in res.stdout:
            return vm
    return None


def db_container(vm):
    return vm_host(vm).check_output("docker inspect -f '{{.Id}} {{.State.StartedAt}}' supabase-db")


def streams_from(vm, primary):
    return wait_until(lambda: upstream(vm) == f"{ADDRESSES[primary]} streaming", 60)


def timed_playbook(*args, timeout=600):
    start = time.monotonic()
    res = ansible_playbook(*INV, *args, timeout=timeout)
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
    assert [role(vm) for vm in VMS] == ["primary", "standby", "standby"] and endpoint_holder() == "vm1"


def test_switchover_and_back_loses_no_acknowledged_row():
    vm2_db = db_container("vm2")
    writer = Writer("switchover")
    there, there_s = timed_playbook("playbooks/switchover.yml", "-e", "new_primary=vm2")
    assert there.returncode == 0, there.stdout[-3000:]
    assert role("vm2") == "primary" and endpoint_holder() == "vm2"
    # Promoted in place: the same container, never restarted.
    assert db_container("vm2") == vm2_db
    streams_from("vm1", "vm2")
    streams_from("vm3", "vm2")
    # The inventory still names vm1 the master: site.yml refuses and says what to change.
    guard, _ = timed_playbook("site.yml", "--check")
    assert guard.returncode != 0
    assert "The inventory is out of date: vm2 is the primary now" in guard.stdout
    back, back_s = timed_playbook("playbooks/switchover.yml", "-e", "new_primary=vm1")
    assert back.returncode == 0, back.stdout[-3000:]
    report = writer.stop({"switchover_to_vm2": there_s, "switchover_back_to_vm1": back_s})
    assert report["acknowledged"] > 0 and report["found"] == report["acknowledged"]
    assert report["lost"] == 0, report["lost_ids"]
    assert role("vm1") == "primary" and endpoint_holder() == "vm1"
    streams_from("vm2", "vm1")
    streams_from("vm3", "vm1")


def test_an_interrupted_switchover_is_finished_by_running_it_again():
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
    res, _ = timed_playbook("playbooks/switchover.yml", "-e", "new_primary=vm2")
    assert res.returncode == 0, res.stdout[-3000:]
    assert role("vm2") == "primary" and endpoint_holder() == "vm2"
    streams_from("vm1", "vm2")
    streams_from("vm3", "vm2")
    assert not vm_host("vm2").run("test -e /opt/supabase/state/operation.json").succeeded


def test_failover_after_the_primary_vm_dies_loses_at_most_what_it_reports():
    primary = next(vm for vm in VMS if role(vm) == "primary")
    writer = Writer("failover")
    subprocess.run(["docker", "kill", f"{PREFIX}-{primary}"], check=True, capture_output=True, timeout=60)
    crashed = time.time()
    res, seconds = timed_playbook("playbooks/failover.yml")
    assert res.returncode == 0, res.stdout[-4000:]
    match = re.search(r"Promoting (vm\d), which received WAL up to ([0-9A-F]+/[0-9A-F]+)", res.stdout)
    assert match, res.stdout[-3000:]
    new = match.group(1)
    assert new != primary and role(new) == "primary" and endpoint_holder() == new
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


def test_the_old_primary_comes_back_as_a_standby_with_rejoin():
    old = next(vm for vm in VMS if subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", f"{PREFIX}-{vm}"],
        capture_output=True, text=True).stdout.strip() == "false")
    new = next(vm for vm in VMS if vm != old and role(vm) == "primary")
    subprocess.run([sys.executable, str(ROOT / "lab/selfhost_lab.py"), "up", old], check=True, capture_output=True,
                   timeout=300)
    # Its database came back by itself as a primary of the old timeline: fenced from clients (no endpoint).
    wait_until(lambda: role(old) != "down", 60)
    assert endpoint_holder() == new
    res, _ = timed_playbook("playbooks/rejoin.yml", "-e", f"host={old}")
    if res.returncode != 0:
        confirm = re.search(r"confirm with -e discard_wal=(\S+)", res.stdout)
        assert confirm, res.stdout[-3000:]
        res, _ = timed_playbook("playbooks/rejoin.yml", "-e", f"host={old}", "-e", f"discard_wal={confirm.group(1)}")
    assert res.returncode == 0, res.stdout[-3000:]
    assert role(old) == "standby"
    streams_from(old, new)
    psql(new, "CREATE TABLE IF NOT EXISTS rejoin_probe (n int); INSERT INTO rejoin_probe VALUES (7)")
    wait_until(lambda: psql(old, "SELECT count(*) FROM rejoin_probe WHERE n = 7", check=False).stdout.strip() == "1",
               30)
