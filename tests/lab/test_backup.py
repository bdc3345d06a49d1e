"""Backups and point-in-time recovery with pgBackRest, in the lab: vm1 primary,
vm2 replica, vm3 the repository host (pgBackRest's TLS server) and the lab's S3
service (s3rver over TLS), the second repository.

The scenario starts from the cluster scenario `default` deployed (inventories/lab)
and turns backups on with one site.yml run of inventories/lab-backup, as an
operator adds them to a running cluster.  These tests run after every other
test of the scenario (conftest orders them last).
"""

import json
import re
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from conftest import (ADDRESSES, ENDPOINT, PREFIX, PROJECT, ROOT, Writer, ansible_playbook, inventory_copy, leaked,
                      psql, refusals, secret, secret_values, vm_host, vm_state, wait_until)

pytestmark = [pytest.mark.backup, pytest.mark.usefixtures("lab_up")]

INVENTORY = ROOT / "inventories" / "lab-backup"
WRITER_DSN = f"host={ENDPOINT} port=5433 user=supabase_admin dbname=postgres"
STANZA = "supabase"
KEY = "/etc/postgresql-custom/pgsodium_root.key"


def playbook(name, *args, timeout=900):
    return ansible_playbook(f"playbooks/{name}" if name != "site.yml" else name, "-i", str(INVENTORY), *args,
                            timeout=timeout)


def recap_changed(out):
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", out, re.M)}


def pgbackrest_repo_host(*args, check=True):
    """pgBackRest on the repository host, as the repository's owner."""
    res = vm_host("vm3").run("runuser -u pgbackrest -- pgbackrest --stanza=%s %s" % (STANZA, " ".join(args)))
    if check:
        assert res.rc == 0, res.stdout + res.stderr
    return res


def info(repo=None):
    args = ["--output=json"] + ([f"--repo={repo}"] if repo else []) + ["info"]
    return json.loads(pgbackrest_repo_host(*args).stdout)[0]


def copy_sql(sql):
    """SQL in the copy restore.yml made on vm3 (container supabase-restore)."""
    env_pw = secret("postgres_password")
    res = subprocess.run(["docker", "exec", "-i", "-e", "PGPASSWORD", f"{PREFIX}-vm3", "docker", "exec", "-i", "-e",
                          "PGPASSWORD", "supabase-restore", "psql", "-h", "/var/run/postgresql", "-U", "supabase_admin",
                          "-d", "postgres", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         env={"PGPASSWORD": env_pw, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def timeline(vm):
    return int(psql(vm, "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"))


def wait_archived(vm="vm1"):
    """Switch to a new WAL segment on vm and wait until the archiver has sent the old one."""
    segment = psql(vm, "SELECT pg_walfile_name(pg_switch_wal())")
    wait_until(lambda: psql(vm, "SELECT last_archived_wal FROM pg_stat_archiver") >= segment, 90, interval=0.5)
    return segment


def utc_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def status_json(*extra):
    out = ROOT / ".lab" / "backup-status.json"
    res = playbook("status.yml", "-e", f"status_file={out}", *extra, timeout=300)
    return res, json.loads(out.read_text())


@pytest.fixture(scope="module")
def backups():
    """Backups turned on for the running cluster: one site.yml run."""
    res = playbook("site.yml")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    # A secret the restores must bring back: encrypted with the cluster's
    # pgsodium root key (the lab's stand-in image has no pgsodium/Vault: the
    # same dependency on that file, through pgcrypto).
    psql("vm1", "CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE TABLE IF NOT EXISTS vault_standin (secret bytea);"
                "TRUNCATE vault_standin;"
                f"INSERT INTO vault_standin SELECT pgp_sym_encrypt('the launch codes', pg_read_file('{KEY}'))")
    return res


def decrypts(sql_runner):
    return sql_runner(f"SELECT pgp_sym_decrypt(secret, pg_read_file('{KEY}')) FROM vault_standin")


def test_turning_backups_on_is_one_site_yml_run_and_a_second_changes_nothing(backups):
    again = playbook("site.yml")
    assert again.returncode == 0, again.stdout[-3000:]
    assert set(recap_changed(again.stdout).values()) == {0}, again.stdout[-3000:]
    for vm in ("vm1", "vm2"):
        assert psql(vm, "SHOW archive_mode") == "on"
        assert "archive-push" in psql(vm, "SHOW archive_command")
        image = vm_host(vm).check_output("docker inspect -f '{{.Config.Image}}' supabase-db supabase-pgbackrest")
        assert set(image.split()) == {image.split()[0]} and image.startswith("selfhost-supabase/db-pgbackrest:")
        assert vm_host(vm).check_output("docker inspect -f '{{.State.Running}}' supabase-pgbackrest") == "true"
    # Backups do not turn the replica into an archiver: only the primary archives.
    assert psql("vm2", "SELECT archived_count FROM pg_stat_archiver") == "0"


def test_wal_reaches_both_repositories_encrypted_and_the_tls_server_checks_clients(backups):
    check = vm_host("vm1").run(f"docker exec supabase-pgbackrest pgbackrest --stanza={STANZA} check")
    assert check.rc == 0, check.stderr
    stanza = info()
    assert stanza["cipher"] == "aes-256-cbc"
    assert [(r["key"], r["status"]["code"]) for r in stanza["repo"]] in ([(1, 0), (2, 0)], [(1, 2), (2, 2)])
    assert {a["database"]["repo-key"] for a in stanza["archive"]} == {1, 2}
    # What lies in the repositories is encrypted.
    head = vm_host("vm3").check_output(f"head -c 64 /var/lib/pgbackrest/archive/{STANZA}/archive.info | base64 -w0")
    assert b"[db]" not in __import__("base64").b64decode(head)
    objects = vm_host("vm3").check_output("docker exec lab-s3 find /data/supabase-backups -type f")
    # The archive's folder is named for the PostgreSQL major version and the stanza's first database.
    major = psql("vm1", "SHOW server_version_num")[:2]
    assert f"supabase/archive/{STANZA}/{major}-1" in objects
    # The repository host's server takes only clients with a certificate of the CA.
    anonymous = vm_host("vm1").run(f"curl -sk --max-time 5 https://{ADDRESSES['vm3']}:8432/ -o /dev/null -w '%{{http_code}}'")
    assert anonymous.rc != 0 or anonymous.stdout.strip() in ("000", "")


def test_a_backup_taken_while_writing_restores_to_the_latest_point_with_every_acknowledged_row(backups):
    writer = Writer("backup-during-writes", WRITER_DSN, rate=20, table="backup_writer")
    res = playbook("backup.yml", "-e", "type=full", "-vvv")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "new backup label" in res.stdout
    assert leaked(secret_values(), res.stdout, res.stderr) == []
    report = writer.stop()
    assert report["lost"] == 0 and report["acknowledged"] > 40, report
    restored = playbook("restore.yml", "-e", "restore_host=vm3")
    assert restored.returncode == 0, restored.stdout[-3000:]
    ids = set(int(i) for i in copy_sql("SELECT id FROM backup_writer").split())
    assert set(report["acked_ids"]) <= ids, f"{len(set(report['acked_ids']) - ids)} acknowledged rows missing"
    assert decrypts(copy_sql) == "the launch codes"


def test_point_in_time_recovery_to_a_time_and_to_a_named_point(backups):
    psql("vm1", "DROP TABLE IF EXISTS pitr; CREATE TABLE pitr (batch text, n int)")
    assert playbook("backup.yml", "-e", "type=full").returncode == 0
    psql("vm1", "INSERT INTO pitr SELECT 'A', g FROM generate_series(1, 137) g")
    wait_archived()
    t1 = utc_now()
    time.sleep(1.5)
    psql("vm1", "INSERT INTO pitr SELECT 'B', g FROM generate_series(1, 59) g")
    psql("vm1", "SELECT pg_create_restore_point('after_b')")
    psql("vm1", "DROP TABLE vault_standin")  # the mistake to undo
    wait_archived()
    before = timeline("vm1")
    # To T1 from S3 (repo2): batch A exactly.
    res = playbook("restore.yml", "-e", "restore_host=vm3", "-e", "repo=2", "-e", f"restore_time='{t1}'")
    assert res.returncode == 0, res.stdout[-3000:]
    assert copy_sql("SELECT batch || count(*) FROM pitr GROUP BY batch ORDER BY 1") == "A137"
    assert int(copy_sql("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")) > before
    assert decrypts(copy_sql) == "the launch codes"
    # To the named point from the repository host (repo1): A and B, and the dropped table back.
    res = playbook("restore.yml", "-e", "restore_host=vm3", "-e", "restore_point=after_b", "-vvv")
    assert res.returncode == 0, res.stdout[-3000:]
    assert leaked(secret_values(), res.stdout, res.stderr) == []
    assert copy_sql("SELECT string_agg(batch || c, ' ') FROM (SELECT batch, count(*) c FROM pitr GROUP BY 1 ORDER BY 1) x") \
        == "A137 B59"
    assert decrypts(copy_sql) == "the launch codes"
    # The cluster was left alone.
    assert psql("vm1", "SELECT count(*) FROM pitr") == "196"
    assert psql("vm1", "SELECT to_regclass('vault_standin') IS NULL") == "t"
    psql("vm1", "CREATE TABLE vault_standin (secret bytea);"
                f"INSERT INTO vault_standin SELECT pgp_sym_encrypt('the launch codes', pg_read_file('{KEY}'))")


def test_status_shows_each_repository_s_last_backups_and_the_archive(backups):
    res, report = status_json()
    assert res.returncode == 0, res.stdout[-3000:]
    backup = report["backup"]
    assert [r["repo"] for r in backup["repos"]] == [1, 2]
    for repo in backup["repos"]:
        assert repo["status"] == "ok" and repo["size_bytes"] > 0
        assert re.match(r"^\d{8}-\d{6}F$", repo["last"]["full"]["label"])
        assert 0 <= repo["last"]["full"]["age_seconds"] < 3600
    assert backup["archive"]["failing"] is False and backup["archive"]["queue_segments"] is not None
    assert "BACKUPS (pgBackRest, stanza supabase" in res.stdout and "LAST FULL" in res.stdout
    stale, report = status_json("-e", "backup_status_max_age_hours=0")
    assert stale.returncode != 0
    assert any("the newest backup in repo1" in p for p in report["problems"]), report["problems"]


OUTAGE_ACKED = set()  # rows acknowledged while the repository host was down


def test_the_repository_host_down_for_half_a_minute_the_queue_grows_status_says_so_and_it_drains(backups):
    writer = Writer("backup-repository-down", WRITER_DSN, rate=20, table="backup_outage")
    # Restarted only by a crash of one of its processes (the postmaster reinitialises them all).
    checkpointer = "SELECT backend_start FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
    started = psql("vm1", checkpointer)
    stopped_at = time.monotonic()
    subprocess.run(["docker", "stop", "-t", "2", f"{PREFIX}-vm3"], check=True, capture_output=True, timeout=60)
    try:
        # Segments complete while the repositories are away wait in pg_wal.
        for _ in range(3):
            psql("vm1", "SELECT pg_switch_wal()")
            time.sleep(1)

        def unhealthy():
            res, report = status_json()
            archive = report.get("backup", {}).get("archive", {})
            return (res.returncode != 0 and archive.get("failing") and archive.get("queue_segments", 0) >= 1
                    and report) or None
        report, _ = wait_until(unhealthy, 180, interval=5)
        assert any("WAL archiving fails on vm1" in p for p in report["problems"]), report["problems"]
        assert report["backup"]["archive"]["oldest_unarchived_age_seconds"] > 0
        time.sleep(max(0.0, 30 - (time.monotonic() - stopped_at)))
    finally:
        subprocess.run([sys.executable, str(ROOT / "lab/selfhost_lab.py"), "up", "vm3"], check=True,
                       capture_output=True, timeout=300)
    wait_until(lambda: psql("vm1", "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'") == "0",
               180, interval=2)
    report = writer.stop()
    assert report["lost"] == 0 and report["errors"] == 0, report
    # The failing pushes' asynchronous pgBackRest processes did not take the database down with them.
    assert psql("vm1", checkpointer) == started, "the primary restarted its processes (a crash) during the outage"
    res, status = status_json()
    assert res.returncode == 0, status["problems"]
    # The restore in place (below) brings back the latest point: every row acknowledged during the outage.
    OUTAGE_ACKED.update(report["acked_ids"])


REFUSALS = [
    ("in place without the confirmation", [], "add -e confirm=supabase"),
    ("in place with another cluster's name", ["-e", "confirm=production"], "confirm=production does not name this cluster"),
    ("a target in the future", ["-e", "confirm=supabase", "-e", "restore_time='2999-01-01 00:00:00'"], "is in the future"),
    ("a target before every backup", ["-e", "confirm=supabase", "-e", "restore_time='2020-01-01 00:00:00+00'"],
     "outside the backups' range"),
    ("a wrong passphrase", ["-e", "restore_host=vm3", "-e", "repo=2", "-e",
                            "restore_cipher_pass=not-the-passphrase-0123456789"], "the passphrase does not decrypt repo2"),
    ("a new passphrase for the cluster", ["-e", "confirm=supabase", "-e",
                                          '{"cluster_supabase_secrets": {"PGBACKREST_CIPHER_PASS": "a-new-one-0123456789"}}'],
     "already holds another one: the backup repositories are encrypted with the stored passphrase"),
    ("a copy onto a database host", ["-e", "restore_host=vm2"], "is a database host of this cluster"),
]


# Side by side (each is refused before it changes anything), the VMs checked once
# before and once after them all; the wrong passphrase alone, after them (it
# reads the repository with a restore configuration of its own on vm3).
SIDE_BY_SIDE = [r for r in REFUSALS if r[0] != "a wrong passphrase"]


@pytest.fixture(scope="module")
def restore_refused(backups):
    results, before, after = refusals(SIDE_BY_SIDE, lambda case: playbook("restore.yml", *case[1], timeout=300),
                                      ("vm1", "vm2"))
    alone = [r for r in REFUSALS if r not in SIDE_BY_SIDE]
    for case in alone:
        results[case[0]] = playbook("restore.yml", *case[1], timeout=300)
    return results, before, [vm_state(vm)[0] for vm in ("vm1", "vm2")], after


@pytest.mark.parametrize("what, args, message", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_restore_that_cannot_be_done_is_refused_and_changes_nothing(restore_refused, what, args, message):
    results, before, after, after_side_by_side = restore_refused
    res = results[what]
    assert res.returncode != 0, res.stdout[-2000:]
    assert message in res.stdout, res.stdout[-2000:]
    assert after_side_by_side == before and after == before, "a refused restore changed a VM's files or containers"


def repository_on_vm2(groups):
    groups["replica"]["hosts"]["vm2"]["cluster_private_address"] = ADDRESSES["vm2"]
    groups["backup_repository"]["hosts"] = {"vm2": groups["replica"]["hosts"]["vm2"]}


BAD_SETTINGS = [
    ("S3 without credentials", None, ["-e", '{"backup_s3": {"bucket": "b", "endpoint": "s3.example", '
                                      '"region": "eu-west-1"}}'], "backup_s3 has no credentials"),
    ("retention 0", None, ["-e", "backup_retention_full=0"],
     "backup_retention_full and backup_retention_diff must be at least 1"),
    ("a repository host that is also a database host", repository_on_vm2, [],
     "vm2 is in the backup_repository group and is also a database host"),
]


def bad_setting(case):
    _, edit, args, _ = case
    inventory = inventory_copy(edit, source=INVENTORY) if edit else INVENTORY
    return ansible_playbook("site.yml", "-i", str(inventory), *args, timeout=300)


@pytest.fixture(scope="module")
def settings_refused(backups):
    return refusals(BAD_SETTINGS, bad_setting, ("vm1", "vm2"))


@pytest.mark.parametrize("what, edit, args, message", BAD_SETTINGS, ids=[c[0] for c in BAD_SETTINGS])
def test_bad_backup_settings_are_refused_before_anything_changes(settings_refused, what, edit, args, message):
    results, before, after = settings_refused
    res = results[what]
    assert res.returncode != 0
    assert message in res.stdout, res.stdout[-2000:]
    assert after == before, "a refused run changed a VM's files or containers"


def test_after_a_switchover_the_new_primary_archives_and_is_backed_up_with_no_command(backups):
    res = playbook("switchover.yml", "-e", "new_primary=vm2", timeout=900)
    assert res.returncode == 0, res.stdout[-3000:]
    new_timeline = timeline("vm2")
    psql("vm2", "CREATE TABLE IF NOT EXISTS after_switch (n int); INSERT INTO after_switch VALUES (1)")
    wait_archived("vm2")
    # What the timer runs on the repository host: pgBackRest finds the primary itself.
    backup = vm_host("vm3").run("/usr/local/sbin/selfhost-supabase-backup incr 1")
    assert backup.rc == 0, backup.stdout + backup.stderr
    newest = [b for b in info(1)["backup"] if b["database"]["repo-key"] == 1][-1]
    assert int(newest["archive"]["start"][:8], 16) == new_timeline
    assert int(psql("vm2", "SELECT archived_count FROM pg_stat_archiver")) > 0
    # And back: the inventory's master is the primary again, and archives again.
    res = playbook("switchover.yml", "-e", "new_primary=vm1", timeout=900)
    assert res.returncode == 0, res.stdout[-3000:]
    wait_archived("vm1")



def test_restore_in_place_brings_the_whole_cluster_back_to_the_latest_point(backups):
    psql("vm1", "DROP TABLE IF EXISTS in_place; CREATE TABLE in_place (n int); INSERT INTO in_place SELECT generate_series(1, 250)")
    before = timeline("vm1")
    system_id = psql("vm1", "SELECT system_identifier FROM pg_control_system()")
    res = playbook("restore.yml", "-e", "confirm=supabase", timeout=1200)
    assert res.returncode == 0, res.stdout[-4000:]
    assert psql("vm1", "SELECT count(*) FROM in_place") == "250"
    assert timeline("vm1") > before
    assert psql("vm1", "SELECT system_identifier FROM pg_control_system()") == system_id
    assert decrypts(lambda sql: psql("vm1", sql)) == "the launch codes"
    # What the primary acknowledged while the repository host was down came back too (its WAL was archived late).
    if OUTAGE_ACKED:
        ids = set(int(i) for i in psql("vm1", "SELECT id FROM backup_outage").split())
        assert OUTAGE_ACKED <= ids, f"{len(OUTAGE_ACKED - ids)} rows acknowledged during the outage are missing"
    # The replica was cloned again, from the repository (replica_clone_source), and streams from the restored primary.
    assert re.search(r"TASK \[selfhost.supabase.replica : Restore the newest backup[^\n]*\n(?:[^\n]*\n)?changed: \[vm2\]",
                     res.stdout), res.stdout[-3000:]
    wait_until(lambda: psql("vm2", "SELECT count(*) FROM in_place", check=False).stdout.strip() == "250", 60)
    assert psql("vm2", "SELECT status || ' ' || received_tli FROM pg_stat_wal_receiver") == f"streaming {timeline('vm1')}"
    # Nothing was thrown away: each host's data before the restore is beside the new one.
    for vm in ("vm1", "vm2"):
        aside = vm_host(vm).check_output(f"ls -d {PROJECT}/volumes/db/data.before-restore-*")
        assert vm_host(vm).file(aside.split()[-1] + "/PG_VERSION").exists
    res, status = status_json()
    assert res.returncode == 0, status["problems"]


def test_pgbackrest_verify_is_clean_after_the_scenario(backups):
    for repo in (1, 2):
        res = pgbackrest_repo_host(f"--repo={repo}", "--log-level-console=detail", "verify")
        assert "invalid" not in res.stdout and "missing" not in res.stdout.lower(), res.stdout[-2000:]
        assert "ERROR" not in res.stdout + res.stderr
