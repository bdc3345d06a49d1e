#!/usr/bin/env python3
"""Auto mode figures, measured in the lab (inventories/lab-production, deployed in auto mode:
`make demo`, or molecule scenario production's converge followed by its first test).

    bench/auto_failover.py [--runs 5] [--out .lab/bench/auto-bench.md]

Over --runs runs each, median and max:
  - the primary VM killed (docker kill) -> first write through the endpoint's HAProxy port
  - the primary's PostgreSQL killed (Patroni alive) -> first write
  - switchover.yml's write gap
  - reads through the read port while a replica VM is killed: errors a reader sees
and pgbench TPS through the primary port with synchronous mode off, then on, in the same run.
A writer commits 50 rows/s through the endpoint the whole time (bench/writer.py); a
killed VM is started again and the cluster is back to healthy before the next run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "lab"))

from conftest import PREFIX, Writer, secret  # noqa: E402
from test_auto import (ADDRESSES, AUTO, DB_VMS, ENDPOINT_DSN, INV, Reader, ansible_playbook,  # noqa: E402
                       first_write_after, healthy, kill_postmaster, lab, leader, now_ms, wait_until)


def engines():
    """The engines' versions and Patroni's timing, as vm1 runs them."""
    def on_vm1(command):
        res = subprocess.run(["docker", "exec", f"{PREFIX}-vm1", "sh", "-c", command], capture_output=True, text=True,
                             timeout=30)
        return res.stdout.strip()
    import yaml
    dcs = yaml.safe_load(on_vm1("cat /opt/supabase/config/patroni.yml") or "{}").get("bootstrap", {}).get("dcs", {})
    return (f"{on_vm1('docker exec supabase-db patroni --version')}, {on_vm1('etcd --version | head -1')}, "
            f"{on_vm1('haproxy -v | head -1').split(' - ')[0]}; ttl {dcs.get('ttl')}, loop_wait {dcs.get('loop_wait')}, "
            f"retry_timeout {dcs.get('retry_timeout')}")


def api_password():
    import yaml
    secrets = yaml.safe_load((ROOT / "inventories/lab/.secrets/supabase-secrets.yml").read_text())
    return secrets["PATRONI_API_PASSWORD"]


def patch_config(vm, body):
    req = urllib.request.Request(f"http://{ADDRESSES[vm]}:8008/config", data=json.dumps(body).encode(),
                                 method="PATCH", headers={"Content-Type": "application/json"})
    pw = api_password()
    import base64
    req.add_header("Authorization", "Basic " + base64.b64encode(f"patroni:{pw}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as res:
        assert res.status == 200


def vm_killed(run):
    old = healthy()
    new = next(vm for vm in DB_VMS if vm != old)
    writer = Writer(f"bench-auto-vm-killed-{run}", ENDPOINT_DSN)
    at = now_ms()
    subprocess.run(["docker", "kill", f"{PREFIX}-{old}"], check=True, capture_output=True)
    wait_until(lambda: leader() == new, 90, interval=0.5)
    report = writer.stop(settle=5)
    lab("up", old)
    healthy()
    return first_write_after(report, at), report["lost"]


def postgres_killed(run):
    lead = healthy()
    writer = Writer(f"bench-auto-pg-killed-{run}", ENDPOINT_DSN)
    at = now_ms()
    kill_postmaster(lead)
    time.sleep(2)
    wait_until(lambda: leader() is not None, 90, interval=0.5)
    report = writer.stop(settle=8)
    healthy()
    return first_write_after(report, at), report["lost"]


def switchover(run):
    lead = healthy()
    target = next(vm for vm in DB_VMS if vm != lead)
    writer = Writer(f"bench-auto-switchover-{run}", ENDPOINT_DSN)
    res = ansible_playbook(*INV, "playbooks/switchover.yml", "-e", f"new_primary={target}", env=AUTO)
    assert res.returncode == 0, res.stdout[-2000:]
    report = writer.stop()
    healthy()
    return report["longest_gap_ms"] / 1000, report["lost"]


def replica_killed(run):
    lead = healthy()
    replica = next(vm for vm in DB_VMS if vm != lead)
    reader = Reader()
    time.sleep(5)
    subprocess.run(["docker", "kill", f"{PREFIX}-{replica}"], check=True, capture_output=True)
    ok, err = reader.result()
    lab("up", replica)
    healthy()
    return err, ok


def pgbench(seconds=20):
    env = dict(os.environ, PGPASSWORD=secret("postgres_password"))
    dsn = ["-h", "172.30.0.10", "-p", "5434", "-U", "supabase_admin", "postgres"]
    binary = "/usr/lib/postgresql/15/bin/pgbench"
    subprocess.run([binary, "-i", "-s", "5", "-q", *dsn], check=True, capture_output=True, env=env, timeout=300)
    out = subprocess.run([binary, "-c", "4", "-j", "2", "-T", str(seconds), "-n", *dsn], check=True,
                         capture_output=True, text=True, env=env, timeout=seconds + 120).stdout
    return float(next(line for line in out.splitlines() if line.startswith("tps")).split()[2])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / ".lab/bench/auto-bench.md"))
    ap.add_argument("--only", choices=["vm", "postgres", "switchover", "replica", "pgbench"], action="append",
                    help="measure only these (repeatable); default: all")
    args = ap.parse_args()
    rows = []
    for key, name, fn, unit in (("vm", "primary VM killed -> first write", vm_killed, "s"),
                                ("postgres", "PostgreSQL killed on the primary -> first write", postgres_killed, "s"),
                                ("switchover", "switchover write gap", switchover, "s"),
                                ("replica", "read errors while a replica VM is killed (40 s reader)", replica_killed,
                                 "errors")):
        if args.only and key not in args.only:
            continue
        figures, extra = [], []
        for run in range(1, args.runs + 1):
            value, other = fn(run)
            figures.append(value)
            extra.append(other)
            print(f"{name} run {run}: {value} {unit} ({other})", flush=True)
        rows.append(f"| {name} | {statistics.median(figures):.2f} {unit} | {max(figures):.2f} {unit} | "
                    f"{', '.join(str(round(f, 2)) for f in figures)} | {extra} |")
    pgbench_line = ""
    if not args.only or "pgbench" in args.only:
        lead = healthy()
        patch_config(lead, {"synchronous_mode": False})
        tps_async = pgbench()
        patch_config(lead, {"synchronous_mode": True})
        time.sleep(10)
        tps_sync = pgbench()
        patch_config(lead, {"synchronous_mode": False})
        pgbench_line = (f"pgbench (scale 5, 4 clients, 20 s) through the primary port: synchronous_mode off "
                        f"{tps_async:.0f} TPS, on {tps_sync:.0f} TPS ({tps_sync / tps_async:.2f} of asynchronous).")
    text = [f"# Auto mode ({engines()})", "",
            f"{args.runs} runs each, lab of 2 database VMs + a witness, writer 50 rows/s through {ENDPOINT_DSN}.", "",
            "| what | median | max | runs | lost rows (or reads ok) per run |", "|---|---|---|---|---|", *rows, "",
            pgbench_line, ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
