"""The Supabase stack on the lab VMs: what runs, what the init SQL did, the
replica's health monitor.  (No secret in a -vvv deploy's output: test_rotate.py.)"""

import json

import pytest

from conftest import PROJECT, psql, vm_host, wait_until

pytestmark = [pytest.mark.default, pytest.mark.usefixtures("lab_up")]
STARTED_IN_LAB = {"supabase-db", "supabase-meta"}


def containers(vm):
    out = vm_host(vm).check_output("docker ps -a --format '{{.Names}} {{.State}}'")
    return dict(line.split() for line in out.splitlines())


def test_the_services_the_lab_can_build_run_and_the_others_are_validated_only():
    assert containers("vm1") == {name: "running" for name in STARTED_IN_LAB}
    # Every service of the release (logs off: not Logflare nor Vector) is rendered and passes
    # docker compose config inside the VM.
    host = vm_host("vm1")
    res = host.run(f"cd {PROJECT} && docker compose -f docker-compose-master.yml config --services")
    assert res.succeeded and set(res.stdout.split()) == {
        "studio", "api-gw", "auth", "rest", "realtime", "storage", "imgproxy", "meta", "functions", "db",
        "supavisor"}, res.stderr
    assert res.stderr.strip() == ""


def test_postgres_meta_answers_from_the_database_it_manages():
    host = vm_host("vm1")
    ip = host.check_output("docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' supabase-meta")

    def schemas():
        res = host.run(f"python3 -c \"import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("
                       f"'http://{ip}:8080/schemas', timeout=5).read().decode())\"")
        return res.succeeded and json.loads(res.stdout)
    names = {s["name"] for s in wait_until(schemas, timeout=60, interval=2)[0]}
    # As upstream's since 0.6.0, meta logs in as postgres, which sees the schemas it may use
    # (not supabase_admin's own, such as _realtime).
    assert {"public", "supabase_functions"} <= names and "_realtime" not in names


def test_the_init_sql_ran_on_first_start():
    assert psql("vm1", "SELECT datname FROM pg_database WHERE datname = '_supabase'") == "_supabase"
    assert psql("vm1", "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace "
                       "WHERE nspname IN ('_analytics', '_supavisor')", db="_supabase") == "_analytics,_supavisor"
    assert psql("vm1", "SELECT current_setting('app.settings.jwt_exp')") == "3600"
    assert psql("vm1", "SELECT count(*) FROM supabase_functions.migrations") == "1"


def test_the_monitor_turns_healthy_again_after_the_replica_restarts():
    host = vm_host("vm2")
    host.check_output("docker restart -t 10 supabase-db")
    status = lambda: host.check_output(  # noqa: E731
        "docker inspect -f '{{.State.Health.Status}}' supabase-replica-monitor") == "healthy"
    # An idle primary sends nothing after the restart: the monitor must not wait for a transaction.
    assert wait_until(status, timeout=90, interval=2)[0]


def test_the_replica_monitor_is_healthy_and_env_files_are_private():
    host = vm_host("vm2")
    status = lambda: host.check_output(  # noqa: E731
        "docker inspect -f '{{.State.Health.Status}}' supabase-replica-monitor") == "healthy"
    assert wait_until(status, timeout=60, interval=2)[0]
    for vm in ("vm1", "vm2"):
        f = vm_host(vm).file(f"{PROJECT}/.env")
        assert f.mode == 0o600 and f.user == "root"
