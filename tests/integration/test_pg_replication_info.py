"""selfhost.supabase.pg_replication_info against a real primary and standby."""

import time

import pytest

from conftest import admin_args, run_module


def status(server, check_mode=False, **extra):
    return run_module("pg_replication_info", dict(admin_args(server), **extra), check_mode=check_mode)


def test_reports_slots_and_streaming_standbys_on_a_primary(pair):
    primary, standby = pair
    rc, res, raw = status(primary)
    assert rc == 0, raw
    assert res["changed"] is False and res["role"] == "primary" and res["timeline"] == 1
    assert [s["name"] for s in res["slots"]] == ["s1"]
    assert res["slots"][0]["type"] == "physical" and res["slots"][0]["active"] is True
    (sb,) = res["standbys"]
    assert sb["application_name"] == standby.application_name and sb["state"] == "streaming"
    assert sb["replay_lag_bytes"] >= 0 and sb["replay_lag_seconds"] >= 0
    assert res["healthy"] is True and res["problems"] == []


def test_reports_recovery_state_on_a_standby(pair):
    primary, standby = pair
    rc, res, raw = status(standby, expected_role="standby", assert_healthy=True, wait_timeout=10)
    assert rc == 0, raw
    assert res["role"] == "standby"
    assert res["standby"]["receiver_status"] == "streaming"
    assert res["standby"]["sender_port"] == primary.port and res["standby"]["slot_name"] == "s1"
    assert res["current_lsn"] == res["standby"]["replay_lsn"]


def test_waits_until_a_standby_has_replayed_an_lsn(pair):
    primary, standby = pair
    primary.query("CREATE TABLE t AS SELECT generate_series(1, 10000) AS x")
    lsn = primary.query("SELECT pg_current_wal_lsn()::text")[0][0]
    rc, res, raw = status(standby, replayed_lsn=lsn, assert_healthy=True, wait_timeout=20)
    assert rc == 0, raw
    assert standby.query("SELECT count(*) FROM t") == [(10000,)]


def test_names_a_missing_standby_and_an_inactive_slot(pair):
    primary, standby = pair
    primary.query("SELECT pg_create_physical_replication_slot('orphan', true)")
    started = time.monotonic()
    rc, res, _ = status(primary, expected_standbys=[standby.application_name, "ghost"],
                        expected_slots=["s1", "orphan"], assert_healthy=True, wait_timeout=2)
    assert rc != 0
    assert time.monotonic() - started >= 2  # it waited for wait_timeout before giving up
    assert "standby ghost is not connected" in res["msg"]
    assert "slot orphan is not active" in res["msg"]
    assert "s1" not in " ".join(res["problems"])


def test_unhealthy_without_assert_reports_instead_of_failing(pair):
    primary, _ = pair
    rc, res, _ = status(primary, expected_role="standby")
    assert rc == 0 and res["healthy"] is False
    assert res["problems"] == ["the server is a primary, expected a standby"]


def test_lag_over_the_limit_is_unhealthy(pair):
    primary, standby = pair
    standby.query("SELECT pg_wal_replay_pause()")
    primary.query("CREATE TABLE big AS SELECT generate_series(1, 200000) AS x")
    rc, res, _ = status(standby, max_lag_bytes=1000, assert_healthy=True, wait_timeout=5)
    assert rc != 0 and "bytes behind what was received" in res["msg"]
    standby.query("SELECT pg_wal_replay_resume()")
    rc, res, raw = status(standby, max_lag_bytes=1000, assert_healthy=True, wait_timeout=20)
    assert rc == 0, raw


def test_a_standby_that_lost_its_primary_is_not_streaming(pair):
    primary, standby = pair
    primary.stop()
    rc, res, _ = status(standby, expected_role="standby", assert_healthy=True, wait_timeout=3)
    assert rc != 0 and "not streaming" in res["msg"]


@pytest.mark.parametrize("bad, message", [
    (dict(replayed_lsn="not-an-lsn"), "is not an LSN"),
    (dict(max_lag_bytes=-1), "must not be negative"),
    (dict(login_port=0), "login_port must be a TCP port"),
    (dict(expected_role="leader"), "expected_role"),
    (dict(login_password="wrong-password-123"), "password authentication failed"),
])
def test_rejects_bad_input(pair, bad, message):
    primary, _ = pair
    rc, res, raw = status(primary, **bad)
    assert rc != 0 and message in res["msg"]
    if "login_password" in bad:
        assert bad["login_password"] not in raw


def test_an_unused_slot_that_pins_wal_is_unhealthy(pair):
    """A slot nothing streams from (as a demoted primary's leftover) holds WAL back."""
    primary, _standby = pair
    limit = 32 * 1024 * 1024
    primary.query("SELECT pg_create_physical_replication_slot('leftover', true)")
    rc, res, raw = status(primary, max_inactive_slot_bytes=limit)
    assert rc == 0 and res["healthy"] is True, raw
    primary.query("CREATE TABLE pinned AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 300000) g")
    primary.query("SELECT pg_switch_wal()")
    rc, res, raw = status(primary, max_inactive_slot_bytes=limit)
    assert rc == 0, raw
    (problem,) = res["problems"]
    assert problem.startswith("slot leftover is used by nothing and holds") and "pg_drop_replication_slot" in problem
    # The standby's own slot, active, is not counted; neither is an expected slot.
    rc, res, raw = status(primary, max_inactive_slot_bytes=limit, expected_slots=["s1", "leftover"])
    assert not [p for p in res["problems"] if "used by nothing" in p], raw
