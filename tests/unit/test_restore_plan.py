"""playbooks/restore.yml's decisions (plugins/filter/backup_plans.py), over a table of cases."""

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.filter.backup_plans import (  # noqa: E402
    parse_time, supabase_restore_plan)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc).timestamp()
CTX = {"enabled": True, "stanza": "supabase", "repos": [1, 2], "s3_repo": 2, "repo_hosts": ["vm3"],
       "db_hosts": ["vm1", "vm2"], "inventory_hosts": ["vm1", "vm2", "vm3", "vm4"], "mode": "manual", "now": NOW}


def backup(label, stop, lsn_stop, repo=1, kind="full"):
    return {"label": label, "type": kind, "timestamp": {"start": stop - 5, "stop": stop}, "lsn": {"start": "0/1",
            "stop": lsn_stop}, "database": {"id": 1, "repo-key": repo}, "error": False}


T0 = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc).timestamp()
INFO = {"name": "supabase", "cipher": "aes-256-cbc",
        "repo": [{"key": 1, "status": {"code": 0, "message": "ok"}}, {"key": 2, "status": {"code": 0, "message": "ok"}}],
        "backup": [backup("20261127-100000F", T0, "0/6000100"), backup("20261127-100000F", T0 + 30, "0/8000050", repo=2),
                   backup("20261127-100000F_20261127-110000I", T0 + 3600, "0/9000100", kind="incr")]}


def plan(info=None, **req):
    return supabase_restore_plan(req, CTX, info)


@pytest.mark.parametrize("text, expected", [
    ("2026-11-27 10:30:00", "2026-11-27 10:30:00+00:00"),
    ("2026-11-27T10:30:00Z", "2026-11-27 10:30:00+00:00"),
    ("2026-11-27 11:30:00+01", "2026-11-27 10:30:00+00:00"),
    ("2026-11-27 05:00:00-05:30", "2026-11-27 10:30:00+00:00"),
    ("2026-11-27 10:30:00.250+0000", "2026-11-27 10:30:00.250000+00:00"),
    ("27/11/2026 10:30", None), ("2026-02-30 10:00:00", None), ("2026-11-27 10:30:00+25", None), ("", None)])
def test_times_parse_to_utc_or_not_at_all(text, expected):
    moment = parse_time(text)
    assert (str(moment) if moment else None) == expected


@pytest.mark.parametrize("req, words", [
    ({"time": "2026-11-27 10:30:00", "lsn": "0/5000000", "confirm": "supabase"}, "name one target"),
    ({"time": "yesterday", "confirm": "supabase"}, "YYYY-MM-DD HH:MM:SS"),
    ({"time": "2026-11-27 12:00:01", "confirm": "supabase"}, "is in the future"),
    ({"time": "2026-11-27 14:00:00+01", "confirm": "supabase"}, "is in the future"),
    ({"lsn": "5000000", "confirm": "supabase"}, "as PostgreSQL shows it"),
    ({"point": "drop table; --", "confirm": "supabase"}, "pg_create_restore_point"),
    ({"repo": "3", "confirm": "supabase"}, "repositories are 1, 2"),
    ({"set": "latest", "confirm": "supabase"}, "not a backup label"),
    ({"host": "vm3", "confirm": "supabase"}, "not both"),
    ({"host": "vm9"}, "not a host of this inventory"),
    ({"host": "vm2"}, "is a database host"),
    ({"host": "vm4"}, "on the repository host itself"),
    ({}, "add -e confirm=supabase"),
    ({"confirm": "prod"}, "confirm=prod does not name this cluster"),
])
def test_bad_requests_are_refused_with_what_to_do(req, words):
    assert words in plan(**req)["problem"]


def test_a_restore_in_place_under_patroni_is_refused():
    result = supabase_restore_plan({"confirm": "supabase"}, dict(CTX, mode="auto"))
    assert "Patroni" in result["problem"]


def test_without_a_repository_nothing_is_planned():
    result = supabase_restore_plan({"confirm": "supabase"}, dict(CTX, enabled=False))
    assert "no backup repository" in result["problem"]


@pytest.mark.parametrize("req, mode, options", [
    ({"confirm": "supabase"}, "in_place", ["--repo=1"]),
    ({"host": "vm3", "time": "2026-11-27 11:30:00+01"}, "copy",
     ["--repo=1", "--type=time", "--target=2026-11-27 10:30:00+00", "--target-action=promote"]),
    ({"host": "vm4", "repo": "2", "lsn": "0/a000000"}, "copy",
     ["--repo=2", "--type=lsn", "--target=0/A000000", "--target-action=promote"]),
    ({"confirm": "supabase", "point": "before_migration", "set": "20261127-100000F"}, "in_place",
     ["--repo=1", "--type=name", "--target=before_migration", "--target-action=promote", "--set=20261127-100000F"]),
])
def test_good_requests_become_pgbackrest_options(req, mode, options):
    result = plan(INFO, **req)
    assert result["problem"] == ""
    assert result["mode"] == mode
    assert result["options"] == options


@pytest.mark.parametrize("req, words", [
    ({"confirm": "supabase", "time": "2026-11-27 09:59:59"}, "outside the backups' range"),
    ({"confirm": "supabase", "lsn": "0/5FFFFFF"}, "outside the backups' range"),
    ({"confirm": "supabase", "set": "20261127-090000F"}, "has no backup 20261127-090000F"),
    ({"confirm": "supabase", "set": "20261127-100000F_20261127-110000I", "time": "2026-11-27 10:30:00"},
     "the chosen backup"),
])
def test_targets_the_repository_cannot_reach_are_refused(req, words):
    assert words in plan(INFO, **req)["problem"]


def test_a_target_inside_the_range_passes_and_repo2_has_its_own_range():
    assert plan(INFO, confirm="supabase", time="2026-11-27 10:00:00")["problem"] == ""
    assert "outside" in plan(INFO, host="vm4", repo="2", time="2026-11-27 10:00:10")["problem"]


def test_a_wrong_passphrase_is_named_as_such():
    garbage = dict(INFO, repo=[{"key": 1, "status": {"code": 99, "message": "[FormatError] unable to load info file"}}])
    assert "passphrase does not decrypt repo1" in plan(garbage, confirm="supabase")["problem"]


def test_an_empty_repository_is_refused():
    empty = dict(INFO, backup=[], repo=[{"key": 1, "status": {"code": 2, "message": "no valid backups"}}])
    assert "holds no backup" in plan(empty, confirm="supabase")["problem"]
