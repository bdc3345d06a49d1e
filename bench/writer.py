#!/usr/bin/env python3
"""A client that commits numbered rows through the stable endpoint, and what it saw.

    writer.py run    --dsn DSN --out FILE [--rate 50] [--seconds N]   (stops on SIGTERM/SIGINT too)
    writer.py verify --dsn DSN --run FILE [--lost-allowed-after LSN]

`run` inserts row 1, 2, 3, ... (one transaction each, autocommit) at --rate
rows per second; a row counts as acknowledged only when its COMMIT returned.
On any error it reconnects (1 s connect timeout) and goes on with the next
number.  Numbers start after the highest row already in the table, so runs
against the same database never share an id.  It writes FILE (JSON): every acknowledged id, and each stretch during
which no write succeeded (last success before, first success after, in ms):
after errors, or a write that hung longer than STALL_S without one.

`verify` reads the table back and adds to FILE: rows found, acknowledged rows
missing (lost), and writes FILE with .md instead of .json, a short report.
"""

import argparse
import json
import signal
import sys
import time
from pathlib import Path

import psycopg2

TABLE = "selfhost_writer"
# Between two acknowledged commits, longer than this counts as a write gap
# even without an error (a write that hung).
STALL_S = 0.2


def connect(dsn):
    # A server that vanished (a VM killed) must not hold a write for minutes:
    # the connection gives up after 3 s without an answer.
    conn = psycopg2.connect(dsn, connect_timeout=1, application_name="selfhost-writer", tcp_user_timeout=3000,
                            keepalives=1, keepalives_idle=1, keepalives_interval=1, keepalives_count=2)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET statement_timeout = '2s'")
    return conn


def run(args):
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    deadline = time.monotonic() + args.seconds if args.seconds else None
    acked, errors, gaps = [], 0, []
    first_ack = None        # wall time (s) of the first acknowledged commit
    last_ok = None          # wall time (s) of the last acknowledged commit
    failing_since = None    # wall time of the first failure after last_ok
    conn = None
    first_id = next_id = None
    interval = 1.0 / args.rate
    started = time.time()
    while not stop["now"] and (deadline is None or time.monotonic() < deadline):
        tick = time.monotonic()
        try:
            if conn is None:
                conn = connect(args.dsn)
                with conn.cursor() as cur:
                    cur.execute(f"CREATE TABLE IF NOT EXISTS {args.table} (id bigint PRIMARY KEY, "
                                "at timestamptz NOT NULL DEFAULT now(), server inet DEFAULT inet_server_addr())")
                    if next_id is None:
                        cur.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {args.table}")
                        first_id = next_id = cur.fetchone()[0]
            with conn.cursor() as cur:
                cur.execute(f"INSERT INTO {args.table} (id) VALUES (%s)", (next_id,))
            now = time.time()
            acked.append(next_id)
            first_ack = first_ack or now
            # A write that failed, or one that hung, both leave writes unacknowledged.
            stalled = last_ok is not None and now - last_ok > max(STALL_S, 2 * interval)
            if (failing_since is not None or stalled) and last_ok is not None:
                gaps.append({"last_success_before": round(last_ok * 1000), "first_success_after": round(now * 1000),
                             "ms": round((now - last_ok) * 1000)})
            failing_since = None
            last_ok = now
        except psycopg2.Error:
            errors += 1
            if failing_since is None:
                failing_since = time.time()
            try:
                if conn is not None:
                    conn.close()
            except psycopg2.Error:
                pass
            conn = None
        if next_id is not None:
            next_id += 1
        rest = interval - (time.monotonic() - tick)
        if rest > 0:
            time.sleep(rest)
    ended = time.time()
    result = {"dsn_host": psycopg2.extensions.parse_dsn(args.dsn).get("host"), "rate": args.rate,
              "started": round(started * 1000), "ended": round(ended * 1000), "first_id": first_id,
              "attempted": (next_id - first_id) if first_id else 0,
              "acknowledged": len(acked), "errors": errors, "gaps": gaps,
              "longest_gap_ms": max((g["ms"] for g in gaps), default=0),
              "first_ack_ms": round(first_ack * 1000) if first_ack else None,
              "last_ack_ms": round(last_ok * 1000) if last_ok else None,
              "achieved_rate": round(len(acked) / max(ended - started, 1e-9), 1), "acked_ids": acked}
    Path(args.out).write_text(json.dumps(result))
    print(json.dumps({k: v for k, v in result.items() if k != "acked_ids"}))


def verify(args):
    path = Path(args.run)
    result = json.loads(path.read_text())
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = connect(args.dsn)
            break
        except psycopg2.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    with conn.cursor() as cur:
        cur.execute(f"SELECT id FROM {args.table}")
        found = {row[0] for row in cur.fetchall()}
    acked = set(result["acked_ids"])
    lost = sorted(acked - found)
    # The table also holds earlier runs' rows: count this run's only.
    result.update(found=len(acked & found), lost=len(lost), lost_ids=lost[:100])
    if args.phases:
        result["phases"] = json.loads(Path(args.phases).read_text())
    path.write_text(json.dumps(result))
    md = [f"# Writer through {result['dsn_host']}", "",
          f"- rows attempted {result['attempted']}, acknowledged {result['acknowledged']}, "
          f"of those found afterwards {result['found']}, lost {result['lost']}",
          f"- rate asked {result['rate']}/s, achieved {result['achieved_rate']}/s",
          f"- write-unavailability: longest {result['longest_gap_ms']} ms"]
    for g in result["gaps"]:
        md.append(f"  - {g['ms']} ms (last success {g['last_success_before']}, first after {g['first_success_after']})")
    for name, seconds in result.get("phases", {}).items():
        md.append(f"- phase {name}: {seconds} s")
    path.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dsn", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--rate", type=float, default=50)
    r.add_argument("--seconds", type=float, default=0)
    r.add_argument("--table", default=TABLE, help="table to write (one per concurrent writer)")
    v = sub.add_parser("verify")
    v.add_argument("--dsn", required=True)
    v.add_argument("--run", required=True)
    v.add_argument("--table", default=TABLE)
    v.add_argument("--phases", help="JSON file {phase: seconds} to include in the report")
    args = p.parse_args(argv)
    return run(args) if args.cmd == "run" else verify(args)


if __name__ == "__main__":
    sys.exit(main())
