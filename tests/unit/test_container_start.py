"""The handlers' question: does a running container work with older versions of its files?"""

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.filter.container_start import started_before  # noqa: E402

# 2026-12-03T12:00:00Z
NOON = 1796299200.0


def info(started="2026-12-03T12:00:00.500000000Z", running=True, exists=True, failed=False):
    result = {"exists": exists, "container": {"State": {"Running": running, "StartedAt": started}} if exists else None}
    if failed:
        result = {"failed": True, "msg": "Error connecting: Error while fetching server API version"}
    return result


def stat(mtime=None):
    return {"stat": {"exists": True, "mtime": mtime}} if mtime is not None else {"stat": {"exists": False}}


@pytest.mark.parametrize("container, stats, restart", [
    pytest.param(info(), [stat(NOON + 2)], True, id="file changed after the start: restart"),
    pytest.param(info(), [stat(NOON - 60)], False, id="started after the change (this run started it): nothing"),
    pytest.param(info(), [stat(NOON - 60), stat(NOON + 1)], True, id="the newest file decides"),
    pytest.param(info(), [stat(NOON + 0.4)], False, id="sub-second: started 0.1 s after the write"),
    pytest.param(info(), [stat(NOON + 0.6)], True, id="sub-second: written 0.1 s after the start"),
    pytest.param(info("2026-12-03T12:00:00Z"), [stat(NOON + 0.1)], True, id="a start time without fraction"),
    pytest.param(info(running=False), [stat(NOON + 2)], False, id="stopped (a fenced host): a restart would start it"),
    pytest.param(info(exists=False), [stat(NOON + 2)], False, id="no container (first deploy in check mode)"),
    pytest.param(info(failed=True), [stat(NOON + 2)], False, id="no engine answered"),
    pytest.param(info(), [stat()], False, id="none of the files exists"),
    pytest.param(info(), [], False, id="no files"),
])
def test_a_container_is_restarted_only_when_it_runs_older_files(container, stats, restart):
    assert started_before(container, stats) is restart


@pytest.mark.parametrize("container, stats", [
    pytest.param("supabase-db", [stat(NOON)], id="a name, not an info result"),
    pytest.param(info(), {"stat": {"exists": True, "mtime": NOON}}, id="one stat result, not a list"),
    pytest.param(info(), [{"path": "/x"}], id="not a stat result"),
    pytest.param(info("yesterday"), [stat(NOON)], id="start time not RFC 3339"),
    pytest.param(info("2026-12-03T13:00:00+01:00"), [stat(NOON)], id="start time not in UTC"),
])
def test_bad_input_is_a_clear_error(container, stats):
    with pytest.raises(AnsibleFilterError, match="started_before"):
        started_before(container, stats)


@pytest.mark.parametrize("container, stats, restart", [
    pytest.param(info(), [stat(NOON - 60)], True, id="running: a file to write means a restart"),
    pytest.param(info(running=False), [stat(NOON - 60)], False, id="stopped: nothing"),
    pytest.param(info(exists=False), [stat()], False, id="no container (first deploy): nothing"),
    pytest.param(info(), [], False, id="no file to write: nothing"),
])
def test_in_check_mode_the_files_to_write_count_as_changed(container, stats, restart):
    assert started_before(container, stats, pending=True) is restart
