"""selfhost.supabase.pg_basebackup against real PostgreSQL 15 on 127.0.0.1.

Each test drives the module as Ansible would and then checks the real state:
files on disk, and a standby that actually starts and streams.
"""

import os
import shutil

import pytest

from conftest import PG_BIN, REPL_PASSWORD, REPL_USER, Server, free_port, os_user, run_module


def args_for(primary, target, **extra):
    args = dict(data_dir=str(target), login_host="127.0.0.1", login_port=primary.port,
                login_user=REPL_USER, login_password=REPL_PASSWORD, executor="local", bin_dir=str(PG_BIN),
                os_user=os_user().pw_name, application_name="test_standby")
    args.update(extra)
    return args


def primary_sysid(primary):
    return str(primary.query("SELECT system_identifier FROM pg_control_system()")[0][0])


def tree_snapshot(path):
    return sorted((str(p.relative_to(path)), p.stat().st_size) for p in path.rglob("*") if p.is_file())


def test_clones_an_empty_directory_into_a_streaming_standby(primary, target):
    primary.query("SELECT pg_create_physical_replication_slot('slot_a', true)")
    rc, res, raw = run_module("pg_basebackup", args_for(primary, target, slot_name="slot_a"))
    assert rc == 0, raw
    assert res["changed"] is True
    assert res["state_before"] == "empty"
    assert res["system_identifier"] == primary_sysid(primary)
    assert res["bytes"] > 10_000_000 and res["seconds"] > 0 and res["throughput_bytes_per_second"] > 0
    assert (target / "standby.signal").exists()
    auto = (target / "postgresql.auto.conf").read_text()
    assert "primary_slot_name = 'slot_a'" in auto
    owner = os_user()
    assert all(p.stat().st_uid == owner.pw_uid for p in [target, *target.rglob("*")])
    assert oct(target.stat().st_mode & 0o777) == "0o700"
    log = open(res["log_file"]).read()
    assert "checkpoint" in log.lower()  # pg_basebackup's own progress output
    assert REPL_PASSWORD not in raw and REPL_PASSWORD not in log

    standby = Server(target, primary.port + 1000)
    standby.start()
    primary.query("INSERT INTO marks VALUES (2, 'after clone')")
    standby.wait_for("SELECT note FROM marks WHERE id = 2", [("after clone",)])
    primary.wait_for("SELECT state FROM pg_stat_replication WHERE application_name = 'test_standby'",
                     [("streaming",)])
    assert primary.query("SELECT active FROM pg_replication_slots WHERE slot_name = 'slot_a'") == [(True,)]
    assert standby.query("SELECT pg_is_in_recovery()") == [(True,)]

    # A re-run with a healthy standby changes nothing, even while it runs.
    before = tree_snapshot(target / "global")
    rc, res, raw = run_module("pg_basebackup", args_for(primary, target, slot_name="slot_a"))
    assert rc == 0, raw
    assert res["changed"] is False and res["state_before"] == "standby"
    assert tree_snapshot(target / "global") == before
    standby.stop()
    primary.query("SELECT pg_drop_replication_slot('slot_a')")


def test_check_mode_reports_a_clone_and_touches_nothing(primary, target):
    rc, res, raw = run_module("pg_basebackup", args_for(primary, target), check_mode=True)
    assert rc == 0, raw
    assert res["changed"] is True and res["actions"]
    assert not target.exists()


def test_refuses_a_cluster_of_another_system(primary, foreign_cluster):
    before = tree_snapshot(foreign_cluster)
    rc, res, raw = run_module("pg_basebackup", args_for(primary, foreign_cluster))
    assert rc != 0
    assert "another cluster" in res["msg"] and "force: true" in res["msg"]
    assert tree_snapshot(foreign_cluster) == before


def test_refuses_a_cluster_of_another_system_in_check_mode_too(primary, foreign_cluster):
    rc, res, _ = run_module("pg_basebackup", args_for(primary, foreign_cluster), check_mode=True)
    assert rc != 0 and "another cluster" in res["msg"]


def test_force_replaces_a_foreign_cluster(primary, foreign_cluster):
    rc, res, raw = run_module("pg_basebackup", args_for(primary, foreign_cluster, force=True))
    assert rc == 0, raw
    assert res["changed"] is True and res["state_before"] == "primary"
    assert res["system_identifier"] == primary_sysid(primary)
    assert (foreign_cluster / "standby.signal").exists()


def test_refuses_a_primary_of_the_same_system(primary, target):
    assert run_module("pg_basebackup", args_for(primary, target))[0] == 0
    os.unlink(target / "standby.signal")  # as after a promotion
    rc, res, _ = run_module("pg_basebackup", args_for(primary, target))
    assert rc != 0 and "holds a primary" in res["msg"]
    assert (target / "PG_VERSION").exists()


def test_refuses_a_half_finished_clone_then_force_recovers(primary, target):
    target.mkdir()
    (target / "base").mkdir()
    marker = target.parent / f".{target.name}.clone-in-progress"
    marker.write_text("interrupted\n")
    rc, res, _ = run_module("pg_basebackup", args_for(primary, target))
    assert rc != 0 and "half-finished" in res["msg"]
    assert (target / "base").exists()
    rc, res, raw = run_module("pg_basebackup", args_for(primary, target, force=True))
    assert rc == 0, raw
    assert not marker.exists() and (target / "standby.signal").exists()


def test_refuses_unknown_files(primary, target):
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    rc, res, _ = run_module("pg_basebackup", args_for(primary, target))
    assert rc != 0 and "holds no PostgreSQL cluster" in res["msg"]
    assert (target / "precious.txt").read_text() == "keep me"


def test_wrong_password_fails_without_printing_it(primary, target):
    rc, res, raw = run_module("pg_basebackup", args_for(primary, target, login_password="wrong-password-xyz"))
    assert rc != 0
    assert "cannot open a replication connection" in res["msg"]
    assert f"the PASSWORD for {REPL_USER} is wrong" in res["msg"], res["msg"]
    assert "wrong-password-xyz" not in raw
    assert not target.exists()


def test_refuses_to_clone_from_a_standby(pair, target):
    _, standby = pair
    rc, res, _ = run_module("pg_basebackup", args_for(standby, target))
    assert rc != 0 and "is itself a standby" in res["msg"], res["msg"]
    assert not target.exists()


def test_a_role_pg_hba_does_not_let_in_is_named_as_such(primary, target):
    rc, res, _ = run_module("pg_basebackup", args_for(primary, target, login_user="postgres"))
    assert rc != 0 and "pg_hba.conf has no line that lets this host's address in as postgres" in res["msg"]
    assert not target.exists()


def test_a_port_where_nothing_answers_is_named_as_such(primary, target):
    port = free_port()
    rc, res, _ = run_module("pg_basebackup", args_for(primary, target, login_port=port))
    assert rc != 0 and f"nothing answers on 127.0.0.1:{port}" in res["msg"]
    assert not target.exists()


def test_tls_required_from_a_server_without_tls_is_named_as_such(primary, target):
    rc, res, _ = run_module("pg_basebackup", args_for(primary, target, ssl_mode="require"))
    assert rc != 0 and "the TLS connection to 127.0.0.1 failed" in res["msg"], res["msg"]
    assert not target.exists(), "nothing may be created before the primary answered"


def test_failed_clone_leaves_a_marked_directory(primary, target):
    rc, res, raw = run_module("pg_basebackup", args_for(primary, target, slot_name="no_such_slot"))
    assert rc != 0 and "pg_basebackup exited" in res["msg"], raw
    assert "force: true" in res["msg"]
    rc, res, _ = run_module("pg_basebackup", args_for(primary, target))
    assert rc != 0 and "half-finished" in res["msg"]


@pytest.mark.parametrize("bad, message", [
    (dict(login_port=70000), "login_port must be a TCP port"),
    (dict(executor="docker"), "image"),
    (dict(executor="podman"), "executor"),
    (dict(timeout=0), "timeout must be a positive"),
    (dict(data_dir="relative/dir"), "absolute path"),
    (dict(force="maybe"), "force"),
    (dict(ssl_mode="strict"), "ssl_mode"),
    (dict(ssl_mode="verify-full"), "verify-full checks the server's certificate: give ca_cert"),
    (dict(ssl_mode="verify-full", ca_cert="/nonexistent/ca.crt"), "is not a readable file on this host"),
])
def test_rejects_bad_arguments(primary, target, bad, message):
    rc, res, _ = run_module("pg_basebackup", args_for(primary, target, **bad))
    assert rc != 0
    assert message in res["msg"]
    assert not target.exists()


def test_missing_password_is_refused(primary, target):
    args = args_for(primary, target)
    del args["login_password"]
    rc, res, _ = run_module("pg_basebackup", args)
    assert rc != 0 and "login_password" in res["msg"]


def test_an_existing_standby_gets_its_new_connection_settings_without_a_clone(pair):
    """A changed replication password, port, TLS mode or name reaches a running standby."""
    primary, standby = pair
    auto = standby.data_dir / "postgresql.auto.conf"
    args = dict(data_dir=str(standby.data_dir), login_host="127.0.0.1", login_port=primary.port,
                login_user=REPL_USER, login_password=REPL_PASSWORD, executor="local", bin_dir=str(PG_BIN),
                os_user=os_user().pw_name, application_name="renamed", slot_name="s1")
    before = auto.read_text()
    rc, res, raw = run_module("pg_basebackup", args, check_mode=True)
    assert rc == 0 and res["changed"] is True and res["reconfigured"] is True, raw
    assert auto.read_text() == before, "check mode wrote the configuration"
    rc, res, raw = run_module("pg_basebackup", args)
    assert rc == 0 and res["reconfigured"] is True and res["bytes"] == 0, raw
    assert "application_name=''renamed''" in auto.read_text() and REPL_PASSWORD not in raw
    standby.query("SELECT pg_reload_conf()")
    primary.wait_for("SELECT application_name, state FROM pg_stat_replication", [("renamed", "streaming")], timeout=30)
    rc, res, raw = run_module("pg_basebackup", args)
    assert rc == 0 and res["changed"] is False and res["reconfigured"] is False, raw
