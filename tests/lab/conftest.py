"""Helpers for tests that run against the lab VMs after a deploy.

The VMs are reached the way a user reaches them: `docker exec` into the VM,
then `docker exec` into the database container (testinfra's docker backend
for the first hop).  Passwords travel in the environment, never in argv.
"""

import atexit
import concurrent.futures
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import testinfra
import yaml

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "lab"
# The lab's settings (lab/selfhost_lab.py and inventories/lab/group_vars read the
# same): a second lab runs beside the first with its own prefix, subnet and secrets.
SECRETS = Path(os.environ.get("SELFHOST_LAB_SECRETS") or INVENTORY / ".secrets")
PREFIX = os.environ.get("SELFHOST_LAB_PREFIX", "selfhost-lab")
NET = os.environ.get("SELFHOST_LAB_SUBNET", "172.30.0.0/24").split("/")[0].rsplit(".", 1)[0]
ADDRESSES = {"vm1": f"{NET}.11", "vm2": f"{NET}.12", "vm3": f"{NET}.13"}
PROJECT = "/opt/supabase"
# The stable endpoint of the lab inventories.
ENDPOINT = f"{NET}.10"
BENCH = ROOT / ".lab" / "bench"


def secret(name):
    return (SECRETS / name).read_text().strip()


def vm_host(vm):
    return testinfra.get_host(f"docker://{PREFIX}-{vm}")


def psql(vm, sql, check=True, port=5432, timeout=30, user="supabase_admin", db="postgres", host="/var/run/postgresql"):
    """Run SQL in the VM's database container (as supabase_admin by default); returns stdout."""
    env = dict(os.environ, PGPASSWORD=secret("postgres_password"))
    cmd = ["docker", "exec", "-i", "-e", "PGPASSWORD", f"{PREFIX}-{vm}",
           "docker", "exec", "-i", "-e", "PGPASSWORD", "supabase-db",
           "psql", "-h", host, "-p", str(port), "-U", user, "-d", db,
           "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"psql on {vm} failed: {res.stderr}")
    return res if not check else res.stdout.strip()


def endpoint_holder(vms):
    """The VM of vms that holds the stable endpoint's address, or None."""
    for vm in vms:
        res = vm_host(vm).run("ip -4 -o addr show")
        if res.succeeded and f" {ENDPOINT}/" in res.stdout:
            return vm
    return None


def wait_until(fn, timeout, interval=0.2):
    """Poll fn() until it returns a truthy value; returns it and the seconds taken."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        last = fn()
        if last:
            return last, time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout}s (last value: {last!r})")


def secret_values():
    """Every secret the lab deploys (the short, non-secret settings left out)."""
    values = {secret("postgres_password"), secret("replication_password")}
    values |= {str(v) for v in yaml.safe_load((SECRETS / "supabase-secrets.yml").read_text()).values()
               if len(str(v)) >= 12}
    assert len(values) >= 12
    return values


def leaked(values, *texts):
    """The secrets found in texts, shortened so a failure does not print them either."""
    text = "".join(texts)
    return [f"{v[:3]}...({len(v)} chars)" for v in values if v in text]


def verbose_run(tmp_path):
    """-vvv and an Ansible log file for a run whose output is then checked with no_secret_in."""
    log = tmp_path / f"ansible-{time.monotonic_ns()}.log"
    return ["-vvv"], {"ANSIBLE_LOG_PATH": str(log)}, log


def no_secret_in(name, res, log, values=None):
    """Fails when a -vvv run's output or its Ansible log holds a secret value."""
    values = values or secret_values()
    assert log.stat().st_size > 10000, f"{name}: the Ansible log is missing or short"
    found = leaked(values, res.stdout, res.stderr, log.read_text())
    assert not found, f"{name} -vvv printed secrets: {found}"


def ansible_playbook(*args, timeout=600, env=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", **(env or {}))
    return subprocess.run(["ansible-playbook", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def vm_state(vm):
    """What a deploy manages on a VM: file checksums and container ids (not the data, nor
    pgBackRest's spool and log, which archiving writes to all the time)."""
    host = vm_host(vm)
    files = host.check_output(
        f"find {PROJECT} -path {PROJECT}/volumes/db/data -prune -o -path {PROJECT}/volumes/db/pgbackrest -prune "
        f"-o -type f -print0 "
        f"| sort -z | xargs -0 -r sha256sum")
    containers = host.check_output("docker ps -a --no-trunc --format '{{.Names}} {{.ID}} {{.State}}'")
    return hashlib.sha256((files + containers).encode()).hexdigest(), files, containers


def refusals(cases, run, vms, workers=3):
    """Runs every refusal case at once (run(case) -> CompletedProcess; none may change a thing):
    {case id: result}, and the VMs' state before and after all of them."""
    before = [vm_state(vm)[0] for vm in vms]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = dict(zip([c[0] for c in cases], pool.map(run, cases)))
    return results, before, [vm_state(vm)[0] for vm in vms]


@pytest.fixture(scope="session")
def lab_up():
    for vm in ("vm1", "vm2"):
        if not vm_host(vm).run("docker inspect supabase-db").succeeded:
            pytest.fail(f"the lab has no database on {vm}: run `make demo` or molecule converge first")


def inventory_copy(edit, source=INVENTORY):
    """A temporary copy of a lab inventory with hosts.yml changed by edit(groups).

    Laid out as <tmp>/lab/ so the lab's group_vars find the same secrets."""
    tmp = Path(tempfile.mkdtemp(prefix="selfhost-inv-")) / "lab"
    shutil.copytree(source / "group_vars", tmp / "group_vars")
    (tmp / ".secrets").symlink_to(SECRETS)
    hosts = yaml.safe_load((source / "hosts.yml").read_text())
    edit(hosts["all"]["children"]["lab"]["children"])
    (tmp / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return tmp


def pytest_collection_modifyitems(items):
    """The scale checks before the failover ones when one run holds both (scenario failover):
    they expect the inventory's master to be the primary, which a failover changes.  The
    backup checks after the others of scenario default: they turn backups on, restore the
    cluster in place and switch the primary over."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("scale") else 2 if item.get_closest_marker("backup") else 1)


RUNNING_WRITERS = []


@pytest.fixture(autouse=True)
def stop_writers():
    """A writer a failed test did not stop would go on writing into the next tests' table."""
    yield
    while RUNNING_WRITERS:
        proc = RUNNING_WRITERS.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


class Writer:
    """bench/writer.py in the background, committing numbered rows to table through dsn;
    stop() returns its report, verified by reading the table back through verify_dsn (default: dsn)."""

    def __init__(self, name, dsn, rate=50, table="selfhost_writer", settle=3):
        BENCH.mkdir(parents=True, exist_ok=True)
        self.out = BENCH / f"{name}.json"
        self.dsn, self.table = dsn, table
        self.env = dict(os.environ, PGPASSWORD=secret("postgres_password"))
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench/writer.py"), "run", "--dsn", dsn,
                                      "--out", str(self.out), "--rate", str(rate), "--table", table], env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # A test that fails before stop() leaves no writer behind (stop_writers, after each test).
        atexit.register(self.proc.kill)
        RUNNING_WRITERS.append(self.proc)
        time.sleep(settle)  # some rows before the event

    def stop(self, phases=None, verify_dsn=None, settle=3):
        time.sleep(settle)  # some rows after it
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, out
        args = [sys.executable, str(ROOT / "bench/writer.py"), "verify", "--dsn", verify_dsn or self.dsn,
                "--run", str(self.out), "--table", self.table]
        if phases:
            phase_file = self.out.with_suffix(".phases.json")
            phase_file.write_text(json.dumps(phases))
            args += ["--phases", str(phase_file)]
        res = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        return json.loads(self.out.read_text())
