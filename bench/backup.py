#!/usr/bin/env python3
"""Backup and restore figures of the lab with backups on (inventories/lab-backup,
after `make test-lab-backup` left it up, or a demo with backups):

  1. a ~1 GiB database on vm1 of mixed data: pgbench's tables, incompressible
     random bytes and hashed text (not only pgbench's very compressible rows);
  2. raw `pg_basebackup` of it (plain, uncompressed, into the pgbackrest
     service's container on vm1): the reference copy;
  3. a full pgBackRest backup to each repository (encrypted, the cluster's
     compression and process-max), timed on the repository host;
  4. a restore of that backup into an empty directory on vm3 (the copy
     restore.yml makes), timed;
  5. archive lag under pgbench: the age of the oldest WAL segment not yet
     archived, sampled every 0.5 s for --pgbench-seconds.

    .venv/bin/python bench/backup.py [--size-gb 1] [--pgbench-seconds 60]

Writes .lab/bench/backup.json and prints a table.  Leaves the tables it made.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = os.environ.get("SELFHOST_LAB_PREFIX", "selfhost-lab")
SECRETS = ROOT / "inventories" / "lab" / ".secrets"
OUT = ROOT / ".lab" / "bench" / "backup.json"


def secret(name):
    return (SECRETS / name).read_text().strip()


def vm(name, *cmd, env=None, timeout=3600, check=True):
    extra = []
    for key in env or {}:
        extra += ["-e", key]
    res = subprocess.run(["docker", "exec", "-i", *extra, f"{PREFIX}-{name}", *cmd], capture_output=True, text=True,
                         timeout=timeout, env=dict(os.environ, **(env or {})))
    if check and res.returncode != 0:
        sys.exit(f"{name}: {' '.join(cmd)[:200]} failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return res


def sql(query, timeout=3600):
    env = {"PGPASSWORD": secret("postgres_password")}
    return vm("vm1", "docker", "exec", "-i", "-e", "PGPASSWORD", "supabase-pgbackrest", "psql", "-h",
              "/var/run/postgresql", "-U", "supabase_admin", "-d", "postgres", "-XAtq", "-v", "ON_ERROR_STOP=1",
              "-c", query, env=env, timeout=timeout).stdout.strip()


def timed(fn):
    start = time.monotonic()
    fn()
    return round(time.monotonic() - start, 2)


def make_data(size_gb):
    """pgbench tables (~45 %), random bytes (~30 %), hashed text (~25 %) up to size_gb."""
    target = int(size_gb * 1024 ** 3)
    have = int(sql("SELECT pg_database_size('postgres')"))
    if have >= target * 0.95:
        return have
    scale = max(1, int(target * 0.45 / 15_000_000))
    env = {"PGPASSWORD": secret("postgres_password")}
    vm("vm1", "docker", "exec", "-i", "-e", "PGPASSWORD", "supabase-pgbackrest", "pgbench", "-i", "-q", "-s", str(scale),
       "-h", "/var/run/postgresql", "-U", "supabase_admin", "postgres", env=env)
    sql("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    rows = int(target * 0.30 / 1100)
    sql(f"DROP TABLE IF EXISTS bench_random; CREATE TABLE bench_random AS "
        f"SELECT g AS id, gen_random_bytes(1024) AS blob FROM generate_series(1, {rows}) g")
    rows = int(target * 0.25 / 300)
    sql(f"DROP TABLE IF EXISTS bench_text; CREATE TABLE bench_text AS SELECT g AS id, "
        f"md5(g::text) || ' ' || repeat(md5((g * 7)::text), 7) AS body FROM generate_series(1, {rows}) g")
    sql("CHECKPOINT")
    return int(sql("SELECT pg_database_size('postgres')"))


def raw_copy():
    env = {"PGPASSWORD": secret("replication_password")}
    vm("vm1", "docker", "exec", "supabase-pgbackrest", "rm", "-rf", "/tmp/bench-basebackup")
    seconds = timed(lambda: vm("vm1", "docker", "exec", "-i", "-e", "PGPASSWORD", "supabase-pgbackrest", "pg_basebackup",
                               "-h", "/var/run/postgresql", "-U", "supabase_replication_admin", "-D",
                               "/tmp/bench-basebackup",
                               "-X", "stream", "-c", "fast", env=env))
    vm("vm1", "docker", "exec", "supabase-pgbackrest", "rm", "-rf", "/tmp/bench-basebackup")
    return seconds


def backup(repo):
    return timed(lambda: vm("vm3", "/usr/local/sbin/selfhost-supabase-backup", "full", str(repo)))


def restore(repo):
    """The restore restore.yml's copy makes, timed alone (its configuration from a first restore.yml run)."""
    res = subprocess.run(["ansible-playbook", "-i", "inventories/lab-backup", "playbooks/restore.yml", "-e",
                          "restore_host=vm3", "-e", f"repo={repo}"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")), timeout=1800)
    if res.returncode != 0:
        sys.exit(res.stdout[-3000:])
    copy = "/opt/supabase-restore/supabase"
    image = vm("vm3", "docker", "inspect", "-f", "{{.Config.Image}}", "supabase-restore").stdout.strip()
    vm("vm3", "docker", "rm", "-f", "supabase-restore")
    vm("vm3", "sh", "-c", f"rm -rf {copy}/data && install -d -o 101 -g 102 -m 0700 {copy}/data")
    hosts = ["--add-host=vm1:172.30.0.11", "--add-host=vm2:172.30.0.12", "--add-host=vm3:172.30.0.13",
             "--add-host=s3.lab.internal:172.30.0.13"]
    return timed(lambda: vm("vm3", "docker", "run", "--rm", "--user", "101:102", *hosts, "-v",
                            f"{copy}/data:/var/lib/postgresql/data", "-v", f"{copy}/pgbackrest:/etc/pgbackrest:ro",
                            "--entrypoint", "pgbackrest", image, "--stanza=supabase", f"--repo={repo}", "restore"))


def archive_lag(seconds):
    env = {"PGPASSWORD": secret("postgres_password")}
    bench = subprocess.Popen(["docker", "exec", "-i", "-e", "PGPASSWORD", f"{PREFIX}-vm1", "docker", "exec", "-i", "-e",
                              "PGPASSWORD", "supabase-pgbackrest", "pgbench", "-h", "/var/run/postgresql", "-U",
                              "supabase_admin", "-c", "4", "-j", "2", "-T", str(seconds), "-n", "postgres"],
                             env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples, segments = [], []
    query = ("SELECT coalesce(extract(epoch FROM now() - min(modification)), 0), count(*) "
             "FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'")
    start_wal = sql("SELECT pg_current_wal_lsn()")
    while bench.poll() is None:
        age, count = sql(query).split("|")
        samples.append(float(age))
        segments.append(int(count))
        time.sleep(0.5)
    out = bench.communicate()[0]
    tps = next((line.split("=")[1].split()[0] for line in out.splitlines() if line.startswith("tps")), "?")
    wal = int(sql(f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{start_wal}')"))
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] if samples else None
    return {"samples": len(samples), "p50_s": statistics.median(samples) if samples else None, "p99_s": p99,
            "max_s": samples[-1] if samples else None, "max_segments_waiting": max(segments, default=0),
            "tps": tps, "wal_mb": round(wal / 2 ** 20)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-gb", type=float, default=1.0)
    p.add_argument("--pgbench-seconds", type=int, default=60)
    args = p.parse_args()
    size = make_data(args.size_gb)
    result = {"database_bytes": size, "raw_pg_basebackup_s": raw_copy()}
    for repo in (1, 2):
        result[f"backup_repo{repo}_s"] = backup(repo)
        result[f"backup_repo{repo}_vs_raw"] = round(result["raw_pg_basebackup_s"] / result[f"backup_repo{repo}_s"], 2)
    for repo in (1, 2):
        result[f"restore_repo{repo}_s"] = restore(repo)
        result[f"restore_repo{repo}_vs_raw"] = round(result[f"restore_repo{repo}_s"] / result["raw_pg_basebackup_s"], 2)
    result["archive_lag"] = archive_lag(args.pgbench_seconds)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
