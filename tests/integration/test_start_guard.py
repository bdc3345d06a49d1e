"""config/start-guard.sh, the database container's start guard, on real PostgreSQL 15 data
directories: a primary that crashed comes back as a read-only standby with no upstream while
the cluster has standbys; a cleanly stopped one, a standby, or a cluster without standbys
starts as it was."""

import os
import subprocess
import time
from pathlib import Path

import jinja2
import pytest

from conftest import Server, free_port, initdb, pg

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "roles/database/templates/db-start-guard.sh.j2"


def guard_script(tmp_path, hold):
    """The template rendered as the role renders it, handing over to a stub entrypoint."""
    stub = tmp_path / "entrypoint-stub.sh"
    stub.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/handed-over\n')
    stub.chmod(0o755)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["bool"] = lambda value: str(value).lower() in ("1", "true", "yes")
    script = tmp_path / "start-guard.sh"
    script.write_text(env.from_string(TEMPLATE.read_text()).render(
        ansible_managed="test", cluster_db_hold_after_crash=hold, cluster_db_entrypoint=str(stub)))
    return script


def run_guard(script, data_dir):
    return subprocess.run(["sh", str(script), "postgres", "-c", "config_file=x"], env=dict(os.environ, PGDATA=str(data_dir)),
                          capture_output=True, text=True, timeout=30)


@pytest.fixture()
def stopped_primary(pg_workdir):
    """A primary with a row, stopped the way the test names: 'immediate' is a crash."""
    server = Server(pg_workdir / f"guard-{time.monotonic_ns()}", free_port())
    initdb(server.data_dir)
    server.start()
    server.query("CREATE TABLE kept AS SELECT 1 AS n")
    yield server
    server.stop()


def test_a_crashed_primary_comes_back_read_only_with_no_upstream(stopped_primary, tmp_path):
    pg("pg_ctl", "-D", str(stopped_primary.data_dir), "-m", "immediate", "-w", "stop")
    res = run_guard(guard_script(tmp_path, True), stopped_primary.data_dir)
    assert res.returncode == 0, res.stderr
    assert "did not shut down cleanly" in res.stderr
    assert (tmp_path / "handed-over").read_text().strip() == "postgres -c config_file=x"
    assert (stopped_primary.data_dir / "standby.signal").exists()
    owner = stopped_primary.data_dir.stat()
    assert (stopped_primary.data_dir / "standby.signal").stat().st_uid == owner.st_uid
    stopped_primary.start()
    assert stopped_primary.query("SELECT pg_is_in_recovery(), (SELECT count(*) FROM kept)") == [(True, 1)]
    assert stopped_primary.query("SHOW primary_conninfo") == [("",)]
    with pytest.raises(Exception, match="read-only transaction"):
        stopped_primary.query("INSERT INTO kept VALUES (2)")


@pytest.mark.parametrize("hold, mode", [(True, "fast"), (False, "immediate")])
def test_a_clean_stop_or_a_cluster_without_standbys_starts_as_it_was(stopped_primary, tmp_path, hold, mode):
    pg("pg_ctl", "-D", str(stopped_primary.data_dir), "-m", mode, "-w", "stop")
    res = run_guard(guard_script(tmp_path, hold), stopped_primary.data_dir)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert not (stopped_primary.data_dir / "standby.signal").exists()
    stopped_primary.start()
    assert stopped_primary.query("SELECT pg_is_in_recovery()") == [(False,)]


def test_an_empty_data_directory_is_left_to_the_image(tmp_path):
    data = tmp_path / "empty"
    data.mkdir()
    res = run_guard(guard_script(tmp_path, True), data)
    assert res.returncode == 0 and list(data.iterdir()) == []
    assert (tmp_path / "handed-over").exists()
