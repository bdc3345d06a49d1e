#!/usr/bin/env python3
"""Clone throughput: selfhost.supabase.pg_basebackup against a raw pg_basebackup.

Runs in the deployed lab (make demo): grows the master's database with pgbench
to about 1 GB (scale 70 by default; kept for later runs), then on vm2 clones it
into scratch directories, alternating the module and a raw pg_basebackup run
from the same image with the same options, and prints each run's figures and
the ratio of the medians.  The deploy itself is not touched.

    .venv/bin/python bench/clone_throughput.py [--scale 70] [--rounds 5]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ROOT / "inventories" / "lab" / ".secrets"
PREFIX = os.environ.get("SELFHOST_LAB_PREFIX", "selfhost-lab")
IMAGE = "selfhost-lab/postgres:17-standin"
MASTER = ("172.30.0.11", 5433)
SCRATCH = "/var/tmp/selfhost-bench"
PG_BIN = "/usr/lib/postgresql/15/bin"


def sh(cmd, env=None, check=True):
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if check and res.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])} ... failed: {res.stderr[-2000:] or res.stdout[-2000:]}")
    return res.stdout.strip()


def in_vm(vm, *cmd, env=None, check=True):
    envflags = [x for k in (env or {}) for x in ("-e", k)]
    return sh(["docker", "exec", *envflags, f"{PREFIX}-{vm}", *cmd], env=dict(os.environ, **(env or {})), check=check)


def in_db(vm, *cmd, env=None):
    envflags = [x for k in (env or {}) for x in ("-e", k)]
    return in_vm(vm, "docker", "exec", *envflags, "supabase-db", *cmd, env=env)


def secret(name):
    return (SECRETS / name).read_text().strip()


def ensure_dataset(scale):
    admin = {"PGPASSWORD": secret("postgres_password")}
    psql = [f"{PG_BIN}/psql", "-h", "/var/run/postgresql", "-U", "supabase_admin", "-d", "postgres", "-Atq", "-c"]
    exists = in_db("vm1", *psql, "SELECT to_regclass('pgbench_branches') IS NOT NULL", env=admin) == "t"
    have = in_db("vm1", *psql, "SELECT count(*) FROM pgbench_branches", env=admin) if exists else "0"
    if int(have) != scale:
        print(f"pgbench -i -s {scale} on vm1 (once; kept for later runs) ...", flush=True)
        t = time.monotonic()
        in_db("vm1", f"{PG_BIN}/pgbench", "-h", "/var/run/postgresql", "-U", "supabase_admin", "-i", "-q",
              "-s", str(scale), "postgres", env=admin)
        print(f"  {time.monotonic() - t:.0f} s", flush=True)
    size = in_db("vm1", *psql, "SELECT pg_database_size('postgres')", env=admin)
    return int(size)


def clone_module(target):
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
        t = time.monotonic()
        sh(["ansible-playbook", "-i", str(ROOT / "inventories" / "lab"), str(ROOT / "bench" / "clone_module.yml"),
            "-e", f"bench_vm=vm2 bench_dir={target} bench_result={result}"], env=env)
        wall = time.monotonic() - t
        r = json.loads(result.read_text())
    return {"bytes": r["bytes"], "seconds": r["seconds"], "wall": wall}


def clone_raw(target):
    env = {"PGPASSWORD": secret("replication_password")}
    parent = os.path.dirname(target)
    in_vm("vm2", "sh", "-c", f"mkdir -p {parent} && chmod 777 {parent}")
    t = time.monotonic()
    in_vm("vm2", "docker", "run", "--rm", "--network", "host", "--user", "postgres", "-e", "PGPASSWORD",
          "-v", f"{parent}:{parent}", "--entrypoint", f"{PG_BIN}/pg_basebackup", IMAGE,
          "-D", target, "-h", MASTER[0], "-p", str(MASTER[1]), "-U", "supabase_replication_admin",
          "--no-password", "-X", "stream", "--checkpoint=fast", "--progress", "--verbose", env=env)
    seconds = time.monotonic() - t
    size = int(in_vm("vm2", "du", "-sb", target).split()[0])
    return {"bytes": size, "seconds": seconds, "wall": seconds}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, default=70)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    if not SECRETS.exists():
        sys.exit("the lab is not deployed: run `make demo` first")
    size = ensure_dataset(args.scale)
    print(f"database on vm1: {size / 2**30:.2f} GiB (pgbench scale {args.scale})")
    runs = {"module": [], "raw": []}
    try:
        # One uncounted clone first, so neither side pays for a cold page cache.
        in_vm("vm2", "rm", "-rf", SCRATCH)
        clone_raw(f"{SCRATCH}/warmup/data")
        for i in range(args.rounds):
            order = ["module", "raw"] if i % 2 == 0 else ["raw", "module"]
            for kind in order:
                target = f"{SCRATCH}/{kind}/data"
                in_vm("vm2", "rm", "-rf", SCRATCH)
                r = (clone_module if kind == "module" else clone_raw)(target)
                r["mb_s"] = r["bytes"] / r["seconds"] / 2**20
                runs[kind].append(r)
                print(f"round {i + 1} {kind:6}: {r['bytes'] / 2**20:8.0f} MiB in {r['seconds']:6.2f} s "
                      f"= {r['mb_s']:7.1f} MiB/s  (wall {r['wall']:.1f} s)", flush=True)
    finally:
        in_vm("vm2", "rm", "-rf", SCRATCH, check=False)
    med = {k: statistics.median(r["mb_s"] for r in v) for k, v in runs.items()}
    print(f"median module {med['module']:.1f} MiB/s, raw pg_basebackup {med['raw']:.1f} MiB/s, "
          f"ratio {med['module'] / med['raw']:.3f}")


if __name__ == "__main__":
    main()
