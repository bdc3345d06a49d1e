"""The production shape: auto mode (Patroni, etcd and HAProxy) under faults,
synchronous replication and backups (molecule scenario `production`: vm1 and
vm2 hold the database, vm3 is the witness, the backup repository host and the
lab's S3 service; inventories/lab-production).

The scenario converges in manual mode; the first test switches the cluster to
auto with one site.yml run while a writer commits.  Then each fault runs with
a writer committing numbered rows through the stable endpoint's HAProxy
primary port (what the stack uses) and, where the old primary matters, a
second writer that keeps trying the old primary's own address.  Each test
writes its figures to .lab/bench/auto-<name>.json and .md: the write gap and
the acknowledged rows missing afterwards.  The tests run in order; each
starts from where the previous one left the cluster.
"""

import base64
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

from conftest import (ADDRESSES, BENCH, ENDPOINT, PREFIX, ROOT, SECRETS, Writer, ansible_playbook, endpoint_holder,
                      inventory_copy, leaked, psql, refusals, secret, secret_values, vm_host, vm_state, wait_until)

pytestmark = pytest.mark.auto

INVENTORY = ROOT / "inventories" / "lab-production"
INV = ["-i", str(INVENTORY)]
AUTO = {"SELFHOST_LAB_MODE": "auto"}
DB_VMS = ("vm1", "vm2")
VMS = ("vm1", "vm2", "vm3")
ENDPOINT_DSN = f"host={ENDPOINT} port=5434 user=supabase_admin dbname=postgres"
READ_DSN = f"host={ENDPOINT} port=5435 user=supabase_admin dbname=postgres"
# 1 MiB: cluster_patroni_maximum_lag_on_failover's default, what an asynchronous failover may lose.
MAX_LAG_BYTES = 1048576
STANZA = "supabase"


def direct_dsn(vm):
    return f"host={ADDRESSES[vm]} port=5433 user=supabase_admin dbname=postgres"


def api(vm, path, timeout=2):
    """Patroni's REST API on vm: (status, JSON or None); (0, None) when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{ADDRESSES[vm]}:8008{path}", timeout=timeout) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None
    except (OSError, ValueError):
        return 0, None


def members():
    for vm in DB_VMS:
        status, body = api(vm, "/cluster")
        if status == 200:
            return {m["name"]: m for m in body["members"]}
    return {}


def leader():
    return next((name for name, m in members().items() if m["role"] == "leader"), None)


def streams(vm, primary):
    res = psql(vm, "SELECT sender_host || ' ' || status FROM pg_stat_wal_receiver", check=False, timeout=10)
    return res.returncode == 0 and res.stdout.strip() == f"{ADDRESSES[primary]} streaming"


def healthy(timeout=180):
    """Wait until one leader leads and every other database VM streams from it; returns the leader."""
    def ok():
        lead = leader()
        if lead is None:
            return None
        others = [vm for vm in DB_VMS if vm != lead]
        return lead if all(streams(vm, lead) for vm in others) else None
    try:
        return wait_until(ok, timeout, interval=1)[0]
    except AssertionError as err:
        raise AssertionError(f"{err}; the members: {members()}; {patroni_logs()}") from None


def patroni_logs(lines=25):
    """The end of each database VM's Patroni log (its container's output), for a failure's message."""
    out = []
    for vm in DB_VMS:
        res = vm_host(vm).run(f"docker logs --tail {lines} supabase-db 2>&1")
        out.append(f"--- {vm}:\n{res.stdout}")
    return "\n".join(out)


def sync_standby():
    """The member Patroni made the synchronous standby, or None."""
    return next((name for name, m in members().items() if m["role"] in ("sync_standby", "synchronous_standby")), None)


def wait_archived(vm):
    """Switch vm (the leader) to a new WAL segment; wait until its archiver has sent the old one."""
    segment = psql(vm, "SELECT pg_walfile_name(pg_switch_wal())")
    wait_until(lambda: psql(vm, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= segment, 90,
               interval=0.5)
    return segment


def repository_info():
    """pgBackRest's info of the stanza, read on the repository host (both repositories)."""
    res = vm_host("vm3").run(f"runuser -u pgbackrest -- pgbackrest --stanza={STANZA} --output=json info")
    assert res.rc == 0, res.stdout + res.stderr
    return json.loads(res.stdout)[0]


def archived_in_every_repository(segment):
    """Each repository's archive reaches segment (its newest WAL is that one or later)."""
    archives = repository_info()["archive"]
    return {a["database"]["repo-key"] for a in archives if (a.get("max") or "") >= segment} == {1, 2}


def running_services(vm):
    return set(vm_host(vm).check_output("docker ps --format '{{.Names}}'").split())


def kill_postmaster(vm):
    """kill -9 of PostgreSQL's postmaster in vm's database container (Patroni stays)."""
    vm_host(vm).check_output(
        "docker exec supabase-db sh -c 'kill -9 $(head -1 /var/lib/postgresql/data/postmaster.pid)'")


def lab(*args):
    subprocess.run([sys.executable, str(ROOT / "lab/selfhost_lab.py"), *args], check=True, capture_output=True,
                   timeout=300)


def now_ms():
    return round(time.time() * 1000)


def gap_around(report, at_ms):
    """The writer's first write gap of half a second or more that ends after at_ms (ms), or None
    (the event's command itself takes a moment: the last write may come after at_ms)."""
    return next((g for g in report["gaps"] if g["first_success_after"] > at_ms and g["ms"] >= 500), None)


def first_write_after(report, at_ms):
    gap = gap_around(report, at_ms)
    return round((gap["first_success_after"] - at_ms) / 1000, 2) if gap else 0.0


def lost_bytes_bound(report):
    """What the lost rows weigh at most in WAL (a row insert and its commit: well under 200 bytes)."""
    return report["lost"] * 200


def bench_note(name, **figures):
    BENCH.mkdir(parents=True, exist_ok=True)
    (BENCH / f"auto-{name}.figures.json").write_text(json.dumps(figures, indent=1))


def site(*extra, timeout=900):
    return ansible_playbook(*INV, "site.yml", *extra, timeout=timeout, env=AUTO)


# ------------------------------------------------------------- the switch


def system_id(vm):
    return psql(vm, "SELECT system_identifier FROM pg_control_system()")


def test_one_site_run_switches_manual_to_auto_and_loses_nothing():
    assert members() == {}, "the scenario should start in manual mode"
    sysid = system_id("vm1")
    psql("vm1", "CREATE TABLE IF NOT EXISTS auto_marker (id int PRIMARY KEY); "
                "INSERT INTO auto_marker SELECT generate_series(1, 1000) ON CONFLICT DO NOTHING")
    writer = Writer("auto-switch-to-auto", f"host={ENDPOINT} port=5433 user=supabase_admin dbname=postgres")
    start = time.monotonic()
    res = site()
    took = round(time.monotonic() - start, 1)
    report = writer.stop(phases={"site.yml (manual to auto)": took})
    assert res.returncode == 0, res.stdout[-4000:]
    lead = healthy()
    assert lead == "vm1", "Patroni should adopt the running primary as its leader"
    assert {system_id(vm) for vm in DB_VMS} == {sysid}, "a database was initialised anew"
    assert psql(lead, "SELECT count(*) FROM auto_marker") == "1000"
    assert report["lost"] == 0, report
    # Patroni's leader archives to both repositories.
    segment = wait_archived(lead)
    wait_until(lambda: archived_in_every_repository(segment), 60, interval=1)
    for vm in DB_VMS:
        image = vm_host(vm).check_output(
            "docker inspect -f '{{.Config.Image}} {{json .Config.Entrypoint}}' supabase-db")
        assert image.startswith("selfhost-supabase/db-patroni:") and "patroni-start.sh" in image, image
    bench_note("switch-to-auto", site_seconds=took, write_gap_ms=report["longest_gap_ms"], lost=report["lost"])


def test_patroni_runs_postgres_as_its_child_and_the_store_is_healthy():
    for vm in DB_VMS:
        tree = vm_host(vm).check_output("docker top supabase-db -eo pid,ppid,args")
        patroni = [line for line in tree.splitlines() if "bin/patroni" in line]
        assert patroni, tree
        patroni_pid = patroni[0].split()[0]
        postmaster = [line for line in tree.splitlines()
                      if line.split()[2:3] in (["postgres"], ["/usr/lib/postgresql/15/bin/postgres"])
                      and line.split()[1] == patroni_pid]
        assert postmaster, f"PostgreSQL is not Patroni's child on {vm}:\n{tree}"
    for vm in VMS:
        res = vm_host(vm).run(f"curl -s http://{ADDRESSES[vm]}:2379/health")
        assert '"health":"true"' in res.stdout, (vm, res.stdout)


def test_a_second_run_in_auto_mode_changes_nothing():
    res = site()
    assert res.returncode == 0, res.stdout[-3000:]
    recap = [line for line in res.stdout.splitlines() if " changed=" in line]
    assert recap and all(" changed=0 " in line for line in recap), "\n".join(recap)


def test_the_primary_port_and_the_read_port():
    lead = healthy()
    replica = next(vm for vm in DB_VMS if vm != lead)
    env = {"PGPASSWORD": secret("postgres_password")}

    def ask(dsn):
        res = subprocess.run(["psql", dsn, "-Atc", "SELECT pg_is_in_recovery(), pg_read_file('/etc/hostname')"],
                             capture_output=True, text=True, timeout=15, env=env)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    container = {vm: vm_host(vm).check_output("docker inspect -f '{{.Config.Hostname}}' supabase-db") for vm in DB_VMS}
    assert ask(ENDPOINT_DSN) == f"f|{container[lead]}"
    for _ in range(4):
        assert ask(READ_DSN) == f"t|{container[replica]}"
    assert endpoint_holder(DB_VMS) == lead
    assert "supabase-meta" in running_services(lead) and "supabase-meta" not in running_services(replica)


# ------------------------------------------------------------- faults


def test_primary_vm_killed_a_replica_takes_over_by_itself():
    old = healthy()
    new = next(vm for vm in DB_VMS if vm != old)
    writer = Writer("auto-vm-killed", ENDPOINT_DSN)
    killed = now_ms()
    subprocess.run(["docker", "kill", f"{PREFIX}-{old}"], check=True, capture_output=True)
    wait_until(lambda: leader() == new, 60, interval=0.5)
    wait_until(lambda: endpoint_holder(DB_VMS) == new, 30, interval=0.5)
    wait_until(lambda: "supabase-meta" in running_services(new), 60, interval=1)
    report = writer.stop(settle=5)
    first = first_write_after(report, killed)
    bench_note("vm-killed", kill_to_first_write_s=first, lost=report["lost"])
    assert report["acknowledged"] > 0 and first > 0, report
    assert lost_bytes_bound(report) <= MAX_LAG_BYTES, report


def test_with_the_inventory_s_first_host_dead_the_new_leader_archives_and_backup_yml_backs_it_up():
    lead = leader()
    dead = next(vm for vm in DB_VMS if vm != lead)
    # The test above killed it: the inventory's master VM is down while this runs.
    state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", f"{PREFIX}-{dead}"],
                           capture_output=True, text=True).stdout.strip()
    assert dead == "vm1" and state == "false", (dead, state)
    psql(lead, "CREATE TABLE IF NOT EXISTS after_failover (n int); INSERT INTO after_failover VALUES (1)")
    segment = wait_archived(lead)
    wait_until(lambda: archived_in_every_repository(segment), 60, interval=1)
    before = {r["key"]: len([b for b in repository_info()["backup"] if b["database"]["repo-key"] == r["key"]])
              for r in repository_info()["repo"]}
    res = ansible_playbook(*INV, "playbooks/backup.yml", "-e", "type=incr", timeout=600, env=AUTO)
    assert res.returncode == 0, res.stdout[-4000:]
    assert "new backup label" in res.stdout
    backups = repository_info()["backup"]
    for key, count in before.items():
        mine = [b for b in backups if b["database"]["repo-key"] == key]
        assert len(mine) == count + 1, (key, before, mine[-1:])
        # Of the new leader: its timeline, higher than the first backups'.
        assert int(mine[-1]["archive"]["start"][:8], 16) == int(segment[:8], 16)


def test_the_old_primary_started_again_comes_back_as_a_replica_by_itself():
    lead = leader()
    old = next(vm for vm in DB_VMS if vm != lead)
    writer = Writer("auto-old-primary-back", ENDPOINT_DSN)
    lab("up", old)
    _, took = wait_until(lambda: streams(old, lead), 180, interval=1)
    report = writer.stop()
    assert report["lost"] == 0, report
    assert report["longest_gap_ms"] < 2000, report
    # Every acknowledged row is on the rejoined replica too.
    count = psql(lead, f"SELECT count(*) FROM selfhost_writer WHERE id >= {report['first_id']}")
    wait_until(lambda: psql(old, f"SELECT count(*) FROM selfhost_writer WHERE id >= {report['first_id']}") == count,
               60)
    # The engine restarts what ran before the crash; the follower stops it again.
    wait_until(lambda: "supabase-meta" not in running_services(old), 30, interval=1)
    bench_note("old-primary-back", streaming_after_start_s=round(took, 1))


def patroni_password():
    return str(yaml.safe_load((SECRETS / "supabase-secrets.yml").read_text())["PATRONI_API_PASSWORD"])


def test_patroni_rebuilds_a_replica_from_the_repository_not_from_the_primary():
    lead = healthy()
    replica = next(vm for vm in DB_VMS if vm != lead)
    psql(lead, "CREATE TABLE IF NOT EXISTS rebuilt (n int); TRUNCATE rebuilt; INSERT INTO rebuilt SELECT generate_series(1, 321)")
    wait_archived(lead)
    since = vm_host(replica).check_output("date -u +%Y-%m-%dT%H:%M:%SZ")
    token = base64.b64encode(f"patroni:{patroni_password()}".encode()).decode()
    req = urllib.request.Request(f"http://{ADDRESSES[replica]}:8008/reinitialize", data=b'{"force": true}',
                                 method="POST", headers={"Authorization": f"Basic {token}",
                                                         "Content-Type": "application/json"})
    writer = Writer("auto-replica-rebuilt", ENDPOINT_DSN)
    asked = time.monotonic()
    with urllib.request.urlopen(req, timeout=30) as res:
        assert res.status == 200
    # Until Patroni has stopped the replica, it still streams: wait for the rebuilt one.
    wait_until(lambda: "replica has been created using pgbackrest"
               in vm_host(replica).check_output(f"docker logs --since {since} supabase-db 2>&1"), 300, interval=1)
    wait_until(lambda: streams(replica, lead), 300, interval=1)
    took = time.monotonic() - asked
    report = writer.stop()
    logs = vm_host(replica).check_output(f"docker logs --since {since} supabase-db 2>&1")
    assert "replica has been created using pgbackrest" in logs, logs[-3000:]
    assert "using basebackup" not in logs, logs[-3000:]
    wait_until(lambda: psql(replica, "SELECT count(*) FROM rebuilt", check=False).stdout.strip() == "321", 60)
    assert report["lost"] == 0, report
    bench_note("replica-rebuilt", rebuilt_streaming_after_s=round(took, 1), longest_write_gap_ms=report["longest_gap_ms"])


def test_switchover_there_and_back_loses_nothing():
    first = healthy()
    other = next(vm for vm in DB_VMS if vm != first)
    gaps = []
    for target in (other, first):
        writer = Writer(f"auto-switchover-to-{target}", ENDPOINT_DSN)
        res = ansible_playbook(*INV, "playbooks/switchover.yml", "-e", f"new_primary={target}", env=AUTO)
        assert res.returncode == 0, res.stdout[-3000:]
        assert leader() == target
        wait_until(lambda: endpoint_holder(DB_VMS) == target, 30, interval=0.5)
        report = writer.stop()
        assert report["lost"] == 0, report
        gaps.append(report["longest_gap_ms"])
        healthy()
    bench_note("switchover", write_gaps_ms=gaps)


def test_postgres_killed_on_the_primary_patroni_starts_it_again():
    lead = healthy()
    started = api(lead, "/patroni")[1]["postmaster_start_time"]
    writer = Writer("auto-postgres-killed", ENDPOINT_DSN)
    killed = now_ms()
    kill_postmaster(lead)

    def back():
        # Patroni's /primary keeps answering 200 until its next loop notices the crash:
        # wait for a postmaster started after the kill (or another leader).
        status, body = api(lead, "/patroni")
        restarted = status == 200 and body.get("postmaster_start_time") not in (None, started) \
            and body.get("role") in ("master", "primary")
        return restarted or leader() not in (None, lead)
    wait_until(back, 90, interval=0.5)
    report = writer.stop(settle=5)
    first = first_write_after(report, killed)
    bench_note("postgres-killed", kill_to_first_write_s=first, lost=report["lost"], leader_after=leader())
    assert first > 0, report
    assert lost_bytes_bound(report) <= MAX_LAG_BYTES, report
    healthy()


PARTITION = "selfhost_test_partition"


def cut_off(vm, peers):
    """Drop everything between vm and its peers (the lab machine still reaches it)."""
    addrs = ", ".join(ADDRESSES[p] for p in peers)
    rules = "\n".join([
        f"table inet {PARTITION} {{",
        f"  chain pre {{ type filter hook prerouting priority -300; ip saddr {{ {addrs} }} drop; }}",
        f"  chain post {{ type filter hook postrouting priority -300; ip daddr {{ {addrs} }} drop; }}",
        f"  chain out {{ type filter hook output priority -300; ip daddr {{ {addrs} }} drop; }}",
        "}"])
    vm_host(vm).check_output(f"nft -f - <<'EOF'\n{rules}\nEOF")


def demoted(vm):
    """vm's Patroni runs its PostgreSQL read-only (what it says on its own API)."""
    status, body = api(vm, "/patroni")
    return status == 200 and body.get("role") in ("replica", "standby") and body.get("state") in ("running", "streaming")


def heal(vm):
    vm_host(vm).run(f"nft delete table inet {PARTITION}")


@pytest.mark.xfail(strict=True, reason="with backups on (the production shape) the cut-off primary does not demote "
                   "within 30 s: its PostgreSQL stop likely waits for the archiver's pushes to the unreachable "
                   "repository host (issue 23; passed without backups)")
def test_a_primary_cut_off_from_the_store_stops_writes_before_another_is_promoted():
    old = healthy()
    new = next(vm for vm in DB_VMS if vm != old)
    via_endpoint = Writer("auto-partition-endpoint", ENDPOINT_DSN, settle=0)
    on_old = Writer("auto-partition-old-primary", direct_dsn(old), table="selfhost_writer_old", settle=3)
    cut = now_ms()
    try:
        cut_off(old, [p for p in VMS if p != old])
        wait_until(lambda: api(new, "/primary")[0] == 200, 90, interval=0.5)
        # The cut-off primary has stopped PostgreSQL and started it again read-only,
        # by itself, before the network heals (cluster_patroni_wal_sender_timeout
        # bounds that stop; see roles/cluster/defaults/main/settings.yml).
        wait_until(lambda: demoted(old), 30, interval=0.5)
        time.sleep(3)
    finally:
        heal(old)
    report_old = on_old.stop(settle=0, verify_dsn=ENDPOINT_DSN)
    report = via_endpoint.stop(settle=5)
    promoted_first_write = gap_around(report, cut)["first_success_after"] if gap_around(report, cut) else None
    bench_note("partition", cut_to_first_write_s=first_write_after(report, cut),
               old_primary_last_write_after_cut_s=round((report_old["last_ack_ms"] - cut) / 1000, 2),
               new_primary_first_write_after_cut_s=round(((promoted_first_write or cut) - cut) / 1000, 2),
               lost_via_endpoint=report["lost"], lost_on_old_primary=report_old["lost"])
    assert promoted_first_write, report
    # Never two primaries taking writes: the old one stopped before the new one started.
    assert report_old["last_ack_ms"] < promoted_first_write, (report_old["last_ack_ms"], promoted_first_write)
    assert lost_bytes_bound(report) <= MAX_LAG_BYTES and lost_bytes_bound(report_old) <= MAX_LAG_BYTES
    assert healthy() == new


def test_one_consensus_member_lost_changes_nothing():
    lead = healthy()
    replica = next(vm for vm in DB_VMS if vm != lead)
    writer = Writer("auto-etcd-member-lost", ENDPOINT_DSN)
    vm_host(replica).check_output("pkill -STOP -x etcd")
    try:
        time.sleep(22)  # longer than the leader key's ttl
        assert leader() == lead
        res = ansible_playbook(*INV, "playbooks/status.yml", env=AUTO)
    finally:
        vm_host(replica).check_output("pkill -CONT -x etcd")
    report = writer.stop()
    assert report["lost"] == 0 and report["longest_gap_ms"] < 1000, report
    assert res.returncode != 0 and f"etcd member {replica} is not healthy" in res.stdout, res.stdout[-3000:]


def test_the_witness_lost_changes_nothing_and_status_says_so():
    lead = healthy()
    writer = Writer("auto-witness-lost", ENDPOINT_DSN)
    subprocess.run(["docker", "kill", f"{PREFIX}-vm3"], check=True, capture_output=True)
    try:
        time.sleep(22)  # longer than the leader key's ttl
        assert leader() == lead
        res = ansible_playbook(*INV, "playbooks/status.yml", env=AUTO)
        assert res.returncode != 0 and "etcd member vm3 is not healthy" in res.stdout, res.stdout[-3000:]
    finally:
        lab("up", "vm3")
    report = writer.stop()
    assert report["lost"] == 0 and report["longest_gap_ms"] < 1000, report
    wait_until(lambda: '"health":"true"' in vm_host("vm3").run(f"curl -s http://{ADDRESSES['vm3']}:2379/health").stdout, 60)
    res = ansible_playbook(*INV, "playbooks/status.yml", env=AUTO)
    assert res.returncode == 0, res.stdout[-3000:]


class Reader:
    """Reads through the read port in the background; counts errors."""

    def __init__(self):
        code = ("import os, sys, time, psycopg2\n"
                "ok = err = 0\n"
                "end = time.time() + float(sys.argv[2])\n"
                "while time.time() < end:\n"
                "    try:\n"
                "        c = psycopg2.connect(sys.argv[1], connect_timeout=1)\n"
                "        c.cursor().execute('SELECT 1'); c.close(); ok += 1\n"
                "    except psycopg2.Error:\n"
                "        err += 1\n"
                "    time.sleep(0.05)\n"
                "print(ok, err)\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code, READ_DSN, "40"], stdout=subprocess.PIPE,
                                     text=True, env={"PGPASSWORD": secret("postgres_password"), "PATH": "/usr/bin"})

    def result(self):
        out, _ = self.proc.communicate(timeout=90)
        ok, err = out.split()
        return int(ok), int(err)


def test_a_replica_killed_reads_fall_back_to_the_primary_and_writes_go_on():
    lead = healthy()
    replica = next(vm for vm in DB_VMS if vm != lead)
    writer = Writer("auto-replica-killed", ENDPOINT_DSN)
    reader = Reader()
    time.sleep(5)
    subprocess.run(["docker", "kill", f"{PREFIX}-{replica}"], check=True, capture_output=True)
    ok, err = reader.result()
    report = writer.stop(settle=0)
    bench_note("replica-killed", reads_ok=ok, read_errors=err, write_gap_ms=report["longest_gap_ms"])
    assert leader() == lead
    assert report["lost"] == 0 and report["longest_gap_ms"] < 1000, report
    assert ok > 100, (ok, err)
    lab("up", replica)
    healthy()


def test_every_node_restarted_one_at_a_time():
    writer = Writer("auto-rolling-restart", ENDPOINT_DSN)
    order = ["vm3"] + sorted(DB_VMS, key=lambda vm: vm == leader())  # the leader last
    for vm in order:
        subprocess.run(["docker", "restart", "-t", "10", f"{PREFIX}-{vm}"], check=True, capture_output=True)
        lab("up", vm)
        healthy()
    report = writer.stop()
    bench_note("rolling-restart", longest_gap_ms=report["longest_gap_ms"], lost=report["lost"])
    assert lost_bytes_bound(report) <= MAX_LAG_BYTES, report


def test_one_site_run_applies_a_setting_that_needs_a_restart_and_synchronous_mode_without_a_failover():
    """max_wal_senders (PostgreSQL restarted in place on every member) and synchronous mode
    turned on, in one site.yml run: the leader stays, nothing is lost, nothing waits for a restart."""
    lead = healthy()
    writer = Writer("auto-restart-setting", ENDPOINT_DSN)
    res = site("--tags", "patroni", "-e", "cluster_max_wal_senders=15", "-e", "cluster_synchronous_mode=true")
    report = writer.stop()
    assert res.returncode == 0, res.stdout[-3000:]
    assert {psql(vm, "SHOW max_wal_senders") for vm in DB_VMS} == {"15"}
    assert leader() == lead, "a restart handed the leadership over"
    assert not [m for m in members().values() if m.get("pending_restart")]
    wait_until(lambda: (api(leader(), "/config")[1] or {}).get("synchronous_mode") is True, 30)
    assert report["lost"] == 0, report


def test_synchronous_mode_loses_no_acknowledged_row_when_the_primary_vm_dies():
    old = healthy()
    new = next(vm for vm in DB_VMS if vm != old)
    wait_until(lambda: sync_standby() == new, 60)
    writer = Writer("auto-sync-vm-killed", ENDPOINT_DSN)
    killed = now_ms()
    subprocess.run(["docker", "kill", f"{PREFIX}-{old}"], check=True, capture_output=True)
    wait_until(lambda: leader() == new, 60, interval=0.5)
    report = writer.stop(settle=5)
    bench_note("sync-vm-killed", kill_to_first_write_s=first_write_after(report, killed), lost=report["lost"])
    lab("up", old)
    assert report["lost"] == 0, report
    healthy()


def test_a_run_without_the_extra_settings_puts_the_inventory_s_back():
    """The settings of the two tests above (a restart and synchronous mode) back to the
    inventory's with one site.yml run, every member restarted in place again (before the
    switchovers below: in synchronous mode Patroni hands over to the synchronous standby only)."""
    writer = Writer("auto-settings-back", ENDPOINT_DSN)
    res = site("--tags", "patroni")
    report = writer.stop()
    assert res.returncode == 0, res.stdout[-3000:]
    assert {psql(vm, "SHOW max_wal_senders") for vm in DB_VMS} == {"12"}
    wait_until(lambda: (api(leader(), "/config")[1] or {}).get("synchronous_mode") is False, 30)
    assert report["lost"] == 0, report
    healthy()


def test_failover_playbook_says_patroni_does_it():
    before = vm_state("vm1"), vm_state("vm2")
    res = ansible_playbook(*INV, "playbooks/failover.yml", env=AUTO)
    assert res.returncode != 0
    assert "Patroni promotes a replica by itself" in res.stdout, res.stdout[-3000:]
    assert (vm_state("vm1"), vm_state("vm2")) == before


def test_no_secret_appears_in_a_vvv_auto_switchover_or_status():
    lead = healthy()
    other = next(vm for vm in DB_VMS if vm != lead)
    values = secret_values()
    for args in (["playbooks/switchover.yml", "-e", f"new_primary={other}"], ["playbooks/status.yml"]):
        res = ansible_playbook(*INV, *args, "-vvv", env=AUTO)
        assert res.returncode == 0, res.stdout[-3000:]
        assert not leaked(values, res.stdout, res.stderr)


# ------------------------------------------------------------- bad input


def witness_also_replica(groups):
    groups["replica"]["hosts"]["vm3"] = groups["witness"]["hosts"]["vm3"]


def witness_without_address(groups):
    del groups["witness"]["hosts"]["vm3"]["cluster_private_address"]


def no_replica(groups):
    groups.pop("replica")


def no_witness(groups):
    groups.pop("witness")


# The timing rules and the member count are also refused by tests/unit/test_rendered_auto.py.
BAD = [
    ("auto with two consensus members", no_witness, ["-e", "cluster_mode=auto"], "etcd needs three"),
    ("witness also a database host", witness_also_replica, [], "is also a database host"),
    ("witness without a private address", witness_without_address, [], "vm3 has no cluster_private_address"),
    ("synchronous mode without a replica", no_replica, ["-e", '{"cluster_synchronous_mode": true}'],
     "cluster_synchronous_mode is on but the inventory has no replica"),
]


def refuse(case):
    _, edit, extra, _ = case
    inventory = inventory_copy(edit, source=INVENTORY) if edit else INVENTORY
    try:
        return ansible_playbook("site.yml", "-i", str(inventory), *extra, env=AUTO)
    finally:
        if edit:
            shutil.rmtree(inventory.parent)


@pytest.fixture(scope="module")
def refused():
    """Every case's run, side by side (each is refused before it changes anything), and the
    database VMs' state before and after them all."""
    return refusals(BAD, refuse, DB_VMS)


@pytest.mark.parametrize("what, edit, extra, message", BAD, ids=[c[0] for c in BAD])
def test_bad_auto_settings_are_refused_before_any_change(refused, what, edit, extra, message):
    results, before, after = refused
    res = results[what]
    assert res.returncode != 0, f"{what} was accepted"
    assert message in res.stdout, res.stdout[-3000:]
    assert after == before, "a refused run changed a VM's files or containers"
