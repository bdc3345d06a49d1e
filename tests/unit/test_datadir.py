"""Pure helpers of module_utils/datadir.py."""

import os
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.module_utils import datadir  # noqa: E402


@pytest.mark.parametrize("value, quoted", [
    ("plain", "'plain'"),
    ("it's", "'it''s'"),
    ("back\\slash", "'back\\\\slash'"),
])
def test_conf_quote_escapes_like_alter_system(value, quoted):
    assert datadir.conf_quote(value) == quoted


def test_passfile_line_escapes_colons_and_backslashes():
    assert datadir.passfile_line("10.0.0.1", 5433, "u:x", "p:w\\d") == "10.0.0.1:5433:*:u\\:x:p\\:w\\\\d\n"


def test_set_auto_conf_replaces_and_is_idempotent(tmp_path):
    (tmp_path / "postgresql.auto.conf").write_text("# header\nwork_mem = '4MB'\nprimary_conninfo = 'old'\n")
    assert datadir.set_auto_conf(tmp_path, {"primary_conninfo": "host=a", "primary_slot_name": "s"})
    text = (tmp_path / "postgresql.auto.conf").read_text()
    assert "work_mem = '4MB'" in text and "'old'" not in text
    assert "primary_conninfo = 'host=a'" in text and "primary_slot_name = 's'" in text
    assert oct(os.stat(tmp_path / "postgresql.auto.conf").st_mode & 0o777) == "0o600"
    assert not datadir.set_auto_conf(tmp_path, {"primary_conninfo": "host=a", "primary_slot_name": "s"})
    assert datadir.set_auto_conf(tmp_path, {"primary_conninfo": "host=a", "primary_slot_name": None})
    assert "primary_slot_name" not in (tmp_path / "postgresql.auto.conf").read_text()


def make_cluster(path, sysid, standby=False):
    (path / "global").mkdir(parents=True)
    (path / "PG_VERSION").write_text("15\n")
    (path / "global" / "pg_control").write_bytes(struct.pack("=Q", sysid) + b"\0" * 100)
    if standby:
        (path / "standby.signal").touch()


def test_inspect_classifies_directories(tmp_path):
    assert datadir.inspect(tmp_path / "missing") == (datadir.EMPTY, None)
    (tmp_path / "empty").mkdir()
    assert datadir.inspect(tmp_path / "empty") == (datadir.EMPTY, None)
    make_cluster(tmp_path / "p", 7441893411834142345)
    assert datadir.inspect(tmp_path / "p") == (datadir.PRIMARY, "7441893411834142345")
    make_cluster(tmp_path / "s", 42, standby=True)
    assert datadir.inspect(tmp_path / "s") == (datadir.STANDBY, "42")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file").write_text("x")
    assert datadir.inspect(tmp_path / "junk") == (datadir.UNKNOWN, None)
    Path(datadir.clone_marker(tmp_path / "s")).write_text("")
    assert datadir.inspect(tmp_path / "s") == (datadir.INTERRUPTED, None)


def test_timeline_switch_points_read_a_history_file():
    from ansible_collections.selfhost.supabase.plugins.modules.pg_rejoin import timeline_switch_points
    history = "1\t0/3000148\tno recovery target specified\n\n2\t0/5A0C2D8\tno recovery target specified\n"
    assert timeline_switch_points(history) == {1: "0/3000148", 2: "0/5A0C2D8"}
    assert timeline_switch_points("") == {}
