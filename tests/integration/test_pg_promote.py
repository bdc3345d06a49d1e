"""selfhost.supabase.pg_promote against a real primary and standby."""

import pytest

from conftest import REPL_USER, admin_args, run_module


def promote(server, check_mode=False, **extra):
    return run_module("pg_promote", dict(admin_args(server), **extra), check_mode=check_mode)


def test_refuses_while_the_upstream_still_answers_as_primary(pair):
    primary, standby = pair
    rc, res, _ = promote(standby)
    assert rc != 0
    assert "still answers as a primary" in res["msg"] and "old_primary_fenced" in res["msg"]
    assert res["upstream"]["answered"] is True and res["upstream"]["role"] == "primary"
    assert standby.query("SELECT pg_is_in_recovery()") == [(True,)]


def test_refuses_when_the_upstream_answers_but_refuses_the_login(pair):
    primary, standby = pair
    # The primary is alive, but the standby's credentials no longer open it.
    primary.query(f"ALTER ROLE {REPL_USER} PASSWORD 'changed-elsewhere-0123456789'")
    rc, res, _ = promote(standby)
    assert rc != 0
    assert "accepts connections but could not be asked whether it is a primary" in res["msg"]
    assert "password authentication failed" in res["msg"]
    assert res["upstream"]["answered"] is True and res["upstream"]["role"] == "unknown"
    assert standby.query("SELECT pg_is_in_recovery()") == [(True,)]
    rc, res, raw = promote(standby, old_primary_fenced=True)
    assert rc == 0 and res["promoted"] is True, raw


def test_check_mode_predicts_without_promoting(pair):
    primary, standby = pair
    primary.stop()
    rc, res, raw = promote(standby, check_mode=True)
    assert rc == 0, raw
    assert res["changed"] is True and res["promoted"] is True
    assert standby.query("SELECT pg_is_in_recovery()") == [(True,)]


def test_promotes_once_the_old_primary_is_gone_then_is_idempotent(pair):
    primary, standby = pair
    primary.query("CREATE TABLE kept AS SELECT 1 AS x")
    lsn = primary.query("SELECT pg_current_wal_lsn()::text")[0][0]
    primary.stop()
    rc, res, raw = promote(standby, replayed_lsn=lsn)
    assert rc == 0, raw
    assert res["changed"] is True and res["promoted"] is True
    assert res["previous_timeline"] == 1 and res["timeline"] == 2
    assert res["upstream"]["answered"] is False
    assert standby.query("SELECT pg_is_in_recovery()") == [(False,)]
    standby.query("INSERT INTO kept VALUES (2)")  # writable now
    rc, res, raw = promote(standby)
    assert rc == 0, raw
    assert res["changed"] is False and res["timeline"] == 2


def test_refuses_a_primary_that_never_was_a_standby(pair):
    primary, _ = pair
    rc, res, _ = promote(primary, old_primary_fenced=True)
    assert rc != 0 and "is a primary that was never a standby (timeline 1)" in res["msg"]
    assert primary.query("SELECT pg_is_in_recovery()") == [(False,)]


def test_fenced_skips_the_guard(pair):
    primary, standby = pair
    rc, res, raw = promote(standby, old_primary_fenced=True)
    assert rc == 0, raw
    assert res["promoted"] is True and res["upstream"]["role"] is None
    assert standby.query("SELECT pg_is_in_recovery()") == [(False,)]


def test_refuses_when_the_standby_has_not_replayed_the_lsn(pair):
    primary, standby = pair
    standby.query("SELECT pg_wal_replay_pause()")
    primary.query("CREATE TABLE late AS SELECT 1 AS x")
    lsn = primary.query("SELECT pg_current_wal_lsn()::text")[0][0]
    rc, res, _ = promote(standby, replayed_lsn=lsn, wait_timeout=2, old_primary_fenced=True)
    assert rc != 0 and "not caught up" in res["msg"]
    assert standby.query("SELECT pg_is_in_recovery()") == [(True,)]


@pytest.mark.parametrize("bad, message", [
    (dict(replayed_lsn="zz"), "is not an LSN"),
    (dict(wait_timeout=0), "wait_timeout must be a positive"),
    (dict(upstream_timeout=-1), "upstream_timeout must be a positive"),
    (dict(upstream_timeout="soon"), "upstream_timeout"),
    (dict(old_primary_fenced="perhaps"), "old_primary_fenced"),
])
def test_rejects_bad_input(pair, bad, message):
    _, standby = pair
    rc, res, _ = promote(standby, **bad)
    assert rc != 0 and message in res["msg"]
    assert standby.query("SELECT pg_is_in_recovery()") == [(True,)]
