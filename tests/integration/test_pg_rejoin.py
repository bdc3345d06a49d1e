"""selfhost.supabase.pg_rejoin and pg_controldata_info against real PostgreSQL 15 servers:
a standby is promoted, the old primary writes on alone (its history diverges), stops,
and is brought back as a standby of the new primary."""

import re
import subprocess
import time

from conftest import (ADMIN_PASSWORD, PG_BIN, REPL_PASSWORD, REPL_USER, Server, free_port, new_primary, new_standby, pg,
                      run_module)


def rejoin_args(old, new, **extra):
    return dict(dict(data_dir=str(old.data_dir), login_host="127.0.0.1", login_port=new.port,
                     login_user="postgres", login_password=ADMIN_PASSWORD, replication_user=REPL_USER,
                     replication_password=REPL_PASSWORD, executor="local", bin_dir=str(PG_BIN),
                     application_name="old", slot_name="old"), **extra)


def clean_stop(server):
    pg("pg_ctl", "-D", str(server.data_dir), "-m", "fast", "-w", "stop")


def keep_wal(server):
    """Let a server that is about to diverge keep the WAL pg_rewind reads back to the last checkpoint
    before the divergence. Its shutdown checkpoint may remove that segment (it did, on a loaded
    machine: "could not find previous WAL record"), and then no rewind can work (rewind_failed)."""
    server.query("ALTER SYSTEM SET wal_keep_size = '256MB'")
    server.query("SELECT pg_reload_conf()")


def test_controldata_reads_what_pg_controldata_shows(pair):
    primary, _standby = pair
    clean_stop(primary)
    rc, res, raw = run_module("pg_controldata_info", dict(data_dir=str(primary.data_dir)))
    assert rc == 0, raw
    shown = subprocess.run([str(PG_BIN / "pg_controldata"), str(primary.data_dir)], capture_output=True,
                           text=True, check=True).stdout
    assert res["state"] == "shut down" and res["clean_shutdown"] is True
    assert f"Latest checkpoint location:           {res['checkpoint_lsn']}" in shown
    assert re.search(rf"Latest checkpoint's TimeLineID:\s+{res['timeline']}\n", shown)
    assert f"Database system identifier:           {res['system_identifier']}" in shown


def test_controldata_only_reads_and_refuses_what_is_not_a_data_directory(pair, tmp_path):
    primary, _standby = pair
    # A running server is read as it is (in production: after the playbook stopped its container).
    rc, res, raw = run_module("pg_controldata_info", dict(data_dir=str(primary.data_dir)))
    assert rc == 0 and res["changed"] is False and res["state"] == "in production", raw
    assert primary.query("SELECT 1") == [(1,)]
    rc, res, raw = run_module("pg_controldata_info", dict(data_dir=str(primary.data_dir), stop_container="supabase-db"))
    assert rc != 0 and "stop_container" in res["msg"], raw
    rc, res, raw = run_module("pg_controldata_info", dict(data_dir=str(tmp_path)))
    assert rc != 0 and "is not a PostgreSQL data directory" in res["msg"], raw


def test_a_diverged_former_primary_is_rewound_only_with_the_confirmed_range(pair):
    old, new = pair
    new.query("SELECT pg_promote(true, 30)")
    new.query("SELECT pg_create_physical_replication_slot('old', true)")
    keep_wal(old)
    old.query("CREATE TABLE lost_on_old AS SELECT generate_series(1, 1000) AS n")
    clean_stop(old)

    rc, preview, raw = run_module("pg_rejoin", rejoin_args(old, new), check_mode=True)
    assert rc == 0, raw
    assert preview["rewind_needed"] is True and preview["discard_bytes"] > 0
    start, end = preview["discard_range"].split("-")
    assert start == preview["diverged_lsn"] and end == preview["local_end_lsn"]

    rc, refused, _ = run_module("pg_rejoin", rejoin_args(old, new))
    assert rc != 0 and f"confirm with discard_wal: {preview['discard_range']}" in refused["msg"]
    rc, refused, _ = run_module("pg_rejoin", rejoin_args(old, new, discard_wal="0/1-0/2"))
    assert rc != 0 and "discards the WAL" in refused["msg"]
    assert not (old.data_dir / "standby.signal").exists()

    rc, res, raw = run_module("pg_rejoin", rejoin_args(old, new, discard_wal=preview["discard_range"]))
    assert rc == 0, raw
    assert res["rewound"] is True and res["changed"] is True
    assert ADMIN_PASSWORD not in raw and REPL_PASSWORD not in raw
    follower = Server(old.data_dir, free_port())
    follower.start()
    try:
        new.query("CREATE TABLE after_rejoin (n int)")
        new.query("INSERT INTO after_rejoin VALUES (42)")
        follower.wait_for("SELECT n FROM after_rejoin", [(42,)], timeout=30)
        assert follower.query("SELECT to_regclass('lost_on_old')") == [(None,)]
        assert new.query("SELECT state FROM pg_stat_replication WHERE application_name = 'old'") == [("streaming",)]
    finally:
        follower.stop()


def test_refuses_while_the_server_runs_and_a_source_that_is_a_standby(pair):
    primary, standby = pair
    rc, res, _ = run_module("pg_rejoin", rejoin_args(primary, standby))
    assert rc != 0 and "is a standby, not the primary" in res["msg"] or "stop it first" in res["msg"]
    rc, res, _ = run_module("pg_rejoin", rejoin_args(standby, primary, slot_name="Bad-Slot"))
    assert rc != 0 and "is not a valid slot name" in res["msg"]


def test_switching_back_right_after_a_promotion_discards_nothing(pair):
    """A switchover and straight back: the new primary's control file still names an older
    timeline until its next checkpoint, and pg_rewind must not read a divergence from it."""
    a, b = pair
    clean_stop(a)
    b.query("SELECT pg_promote(true, 30)")
    b.query("SELECT pg_create_physical_replication_slot('old', true)")
    rc, res, raw = run_module("pg_rejoin", rejoin_args(a, b))
    assert rc == 0 and res["discard_range"] == "", raw
    a = Server(a.data_dir, free_port())
    a.start()
    try:
        b.query("CREATE TABLE round_trip AS SELECT generate_series(1, 5000) AS n")
        a.wait_for("SELECT count(*) FROM round_trip", [(5000,)], timeout=30)
        clean_stop(b)
        a.wait_for("SELECT pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()", [(True,)])
        a.query("SELECT pg_promote(true, 30)")
        a.query("SELECT pg_create_physical_replication_slot('old', true)")
        rc, res, raw = run_module("pg_rejoin", rejoin_args(b, a), check_mode=True)
        assert rc == 0, raw
        assert res["discard_range"] == "" and res["discard_bytes"] == 0, res
    finally:
        a.stop()


def tree_state(path):
    """Every file under path with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.rglob("*")) if p.is_file()}


def test_check_mode_changes_nothing_on_either_server(pair):
    """The preview asks the new primary for no CHECKPOINT and writes no log and no password file
    beside the data directory, yet names the range the real run then discards."""
    old, new = pair
    keep_wal(old)
    new.query("SELECT pg_promote(true, 30)")
    old.query("CREATE TABLE only_on_old AS SELECT generate_series(1, 1000) AS n")
    clean_stop(old)
    checkpoints = "SELECT checkpoints_req FROM pg_stat_bgwriter"
    control = "SELECT checkpoint_lsn::text, timeline_id FROM pg_control_checkpoint()"
    # The promotion's own checkpoint, which runs in the background, must not count as the module's.
    new.wait_for("SELECT timeline_id FROM pg_control_checkpoint()", [(2,)], timeout=30)
    before = (new.query(checkpoints), new.query(control), tree_state(old.data_dir.parent / old.data_dir.name),
              sorted(p.name for p in old.data_dir.parent.iterdir()))

    rc, preview, raw = run_module("pg_rejoin", rejoin_args(old, new), check_mode=True)
    assert rc == 0, raw
    after = (new.query(checkpoints), new.query(control), tree_state(old.data_dir.parent / old.data_dir.name),
             sorted(p.name for p in old.data_dir.parent.iterdir()))
    assert after == before
    assert preview["rewind_needed"] is True and preview["discard_bytes"] > 0
    assert preview["discard_range"] == f"{preview['diverged_lsn']}-{preview['local_end_lsn']}"

    # The real run (which checkpoints first) confirms the very range the preview named.
    new.query("SELECT pg_create_physical_replication_slot('old', true)")
    rc, res, raw = run_module("pg_rejoin", rejoin_args(old, new, discard_wal=preview["discard_range"]))
    assert rc == 0 and res["rewound"] is True, raw


def test_two_servers_promoted_to_the_same_timeline_are_cloned_not_rewound(pg_workdir):
    """Two standbys of one primary both promoted (a promotion by hand, say): both are on
    timeline 2 with histories of their own, which pg_rewind takes for one. The rejoin names
    what the second wrote alone, and once that is confirmed asks for a new clone."""
    tag = time.monotonic_ns()
    primary = new_primary(pg_workdir, f"tp-{tag}")
    one = new_standby(pg_workdir, primary, f"one_{tag}", slot="one")
    two = new_standby(pg_workdir, primary, f"two_{tag}", slot="two")
    try:
        primary.query("CREATE TABLE shared AS SELECT 1 AS n")
        one.wait_for("SELECT count(*) FROM shared", [(1,)])
        two.wait_for("SELECT count(*) FROM shared", [(1,)])
        clean_stop(primary)
        one.query("SELECT pg_promote(true, 30)")
        two.query("SELECT pg_promote(true, 30)")
        keep_wal(two)
        two.query("CREATE TABLE only_on_two AS SELECT generate_series(1, 1000) AS n")
        one.query("SELECT pg_create_physical_replication_slot('old', true)")
        clean_stop(two)

        rc, preview, raw = run_module("pg_rejoin", rejoin_args(two, one), check_mode=True)
        assert rc == 0, raw
        assert preview["rewind_needed"] is True and preview["rewind_failed"] is True
        assert preview["discard_bytes"] > 0 and preview["source_timeline"] == 2
        rc, res, raw = run_module("pg_rejoin", rejoin_args(two, one, discard_wal=preview["discard_range"]))
        assert rc != 0 and res["rewind_failed"] is True and "Clone the primary again" in res["msg"], raw
        assert not (two.data_dir / "standby.signal").exists()
    finally:
        for server in (one, two, primary):
            server.stop()
