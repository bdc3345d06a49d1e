"""A login without the privileges a module needs gets a message that says what to do, never a
traceback (selfhost.supabase.pg_replication_info and pg_promote against real servers)."""

from conftest import admin_args, run_module

WATCHER = "watcher_without_stats"
WATCHER_PASSWORD = "watcher-password-0123456789"


def watcher_args(server, **extra):
    return dict(admin_args(server), login_user=WATCHER, login_password=WATCHER_PASSWORD, **extra)


def create_watcher(primary, standby):
    primary.query(f"CREATE ROLE {WATCHER} LOGIN PASSWORD %s", WATCHER_PASSWORD)
    standby.wait_for(f"SELECT count(*) FROM pg_roles WHERE rolname = '{WATCHER}'", [(1,)])


def test_status_without_pg_read_all_stats_says_which_privilege_is_missing(pair):
    primary, standby = pair
    create_watcher(primary, standby)
    rc, res, raw = run_module("pg_replication_info", watcher_args(primary, max_lag_bytes=1024,
                                                                   max_lag_seconds=5.0))
    assert "Traceback" not in raw
    assert rc == 0, raw
    assert res["healthy"] is False
    assert any("pg_read_all_stats" in problem and standby.application_name in problem
               for problem in res["problems"]), res["problems"]


def test_promote_without_the_privilege_to_read_the_upstream_fails_cleanly(pair):
    primary, standby = pair
    create_watcher(primary, standby)
    rc, res, raw = run_module("pg_promote", watcher_args(standby))
    assert "Traceback" not in raw
    assert rc != 0 and "may not run" in res["msg"] and "superuser" in res["msg"], raw
    assert res.get("promoted") is not True
    assert standby.query("SELECT pg_is_in_recovery()") == [(True,)]
