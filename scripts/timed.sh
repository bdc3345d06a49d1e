#!/usr/bin/env bash
# Run a part of the test suite and record its wall time and exit status for
# the summary (scripts/test_summary.py):  scripts/timed.sh NAME COMMAND...
name=$1
shift
mkdir -p .lab/times
start=$(date +%s)
"$@"
rc=$?
echo "$(($(date +%s) - start)) $rc" > ".lab/times/$name"
exit $rc
