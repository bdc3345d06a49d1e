"""playbooks/status.yml on a deployed lab: one screen, JSON for monitoring, non-zero when unhealthy."""

import json

import pytest

from conftest import ansible_playbook, no_secret_in, psql, verbose_run, vm_host, vm_state, wait_until

pytestmark = [pytest.mark.default, pytest.mark.usefixtures("lab_up")]


def status(tmp_path, *extra, env=None):
    report = tmp_path / "status.json"
    res = ansible_playbook("playbooks/status.yml", "-i", "inventories/lab",
                           "-e", f"status_file={report}", *extra, timeout=180, env=env)
    return res, json.loads(report.read_text())


def test_a_healthy_cluster_reads_healthy_and_exits_zero(tmp_path):
    """At -vvv with a log file, which print no secret."""
    before = vm_state("vm1"), vm_state("vm2")
    verbose, env, log = verbose_run(tmp_path)
    res, report = status(tmp_path, *verbose, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    no_secret_in("status.yml", res, log)
    assert report["healthy"] is True and report["problems"] == []
    hosts = {h["host"]: h for h in report["hosts"]}
    assert hosts["vm1"]["role"] == "primary" and hosts["vm2"]["role"] == "standby"
    assert hosts["vm1"]["timeline"] == hosts["vm2"]["timeline"] >= 1
    assert hosts["vm2"]["standby"]["receiver_status"] == "streaming"
    slot = {s["name"]: s for s in hosts["vm1"]["slots"]}["vm2"]
    assert slot["active"] is True and slot["type"] == "physical"
    assert [s["application_name"] for s in hosts["vm1"]["standbys"]] == ["vm2"]
    for h in hosts.values():
        assert h["containers_total"] >= 1 and h["containers_healthy"] == h["containers_total"]
    # The screen a person reads: a header, one line per host, a verdict.
    assert "HOST" in res.stdout and "HEALTHY" in res.stdout and "UNHEALTHY" not in res.stdout
    assert (vm_state("vm1"), vm_state("vm2")) == before, "status.yml changed something"


def test_json_format_prints_the_same_report(tmp_path):
    res, report = status(tmp_path, "-e", "status_format=json")
    assert res.returncode == 0, res.stdout[-3000:]
    assert '"healthy": true' in res.stdout and '"receiver_status": "streaming"' in res.stdout
    assert report["healthy"] is True


def test_a_stopped_replica_makes_it_exit_non_zero_and_says_why(tmp_path):
    vm2 = vm_host("vm2")
    vm2.check_output("docker stop -t 10 supabase-db")
    try:
        res, report = status(tmp_path)
        assert res.returncode != 0
        assert report["healthy"] is False
        problems = " | ".join(report["problems"])
        assert "vm2: database does not answer" in problems
        assert "vm2: containers not healthy: supabase-db" in problems
        assert "vm1: " in problems and "vm2" in problems.split("vm1: ", 1)[1]  # the master misses its standby
        assert "UNHEALTHY" in res.stdout
    finally:
        vm2.check_output("docker start supabase-db")
        streaming = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        wait_until(lambda: psql("vm1", streaming) == "1", timeout=90, interval=1)
