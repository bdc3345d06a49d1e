#!/usr/bin/env python3
"""Add up the JUnit reports of a `make test` run into one closing line, after
each part's wall time and status (written by scripts/timed.sh)."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

totals = dict(tests=0, failures=0, errors=0, skipped=0)
cases = []  # (seconds, report, name, failed)
reports = [Path(p) for p in sys.argv[1:] if Path(p).exists()]
missing = [p for p in sys.argv[1:] if not Path(p).exists()]
for report in reports:
    root = ET.parse(report).getroot()
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
        for case in suite.iter("testcase"):
            bad = case.find("failure") is not None or case.find("error") is not None
            cases.append((float(case.get("time") or 0), report.stem.removeprefix("junit-"),
                          f"{case.get('classname', '')}::{case.get('name', '')}", bad))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
times = Path(".lab/times")
parts = sorted(times.iterdir(), key=lambda p: p.stat().st_mtime) if times.is_dir() else []
total = 0
for part in parts:
    seconds, rc = part.read_text().split()
    total += int(seconds)
    print(f"part {part.name:<14} {int(seconds) // 60:3d} min {int(seconds) % 60:02d} s  {'ok' if rc == '0' else 'FAILED'}")
if parts:
    print(f"parts together   {total // 60:3d} min {total % 60:02d} s")
started = Path(".lab/test-started")
if started.is_file():
    import time
    wall = int(time.time()) - int(started.read_text().split()[0])
    print(f"wall time        {wall // 60:3d} min {wall % 60:02d} s  (the checks run beside the lab scenarios)")
# The slowest tests (where the time goes) and every failed one by name.
for seconds, report, name, _ in sorted(cases, reverse=True)[:15]:
    print(f"slow  {seconds:7.1f} s  {report:<12} {name}")
for _, report, name, bad in cases:
    if bad:
        print(f"FAILED  {report:<12} {name}")
print(f"reports: {', '.join(map(str, reports)) or 'none'}")
if missing:
    print(f"missing (those tests never ran; see the log above): {', '.join(missing)}")
print(f"summary: {passed} passed, {failed} failed, {totals['skipped']} skipped")
sys.exit(1 if failed or missing else 0)
