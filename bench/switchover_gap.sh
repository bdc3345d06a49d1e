#!/usr/bin/env bash
# The write gap of a manual switchover on the deployed lab (vm1 + vm2, after
# `make demo` or bench/deploy_time.sh): bench/writer.py commits 50 rows/s through
# the endpoint around playbooks/switchover.yml to vm2, then back to vm1, and
# verifies every acknowledged row afterwards.  A measurement: it prints the gaps
# (.lab/bench/gap.md) and asserts nothing about their length.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
SECRETS=${SELFHOST_LAB_SECRETS:-inventories/lab/.secrets}
PGPASSWORD=$(cat "$SECRETS/postgres_password")
export PGPASSWORD
DSN="host=172.30.0.10 port=5433 user=supabase_admin dbname=postgres"
mkdir -p .lab/bench
python bench/writer.py run --dsn "$DSN" --out .lab/bench/gap.json --rate 50 &
writer=$!
trap 'kill $writer 2>/dev/null || true' EXIT
sleep 5
for target in vm2 vm1; do
  start=$(date +%s.%N)
  ansible-playbook playbooks/switchover.yml -i inventories/lab -e new_primary=$target > ".lab/bench/gap-$target.log" 2>&1
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" -v t="$target" 'BEGIN { printf "switchover to %s: playbook %.1f s\n", t, b - a }'
  sleep 5
done
kill -TERM $writer; wait $writer || true
python bench/writer.py verify --dsn "$DSN" --run .lab/bench/gap.json > /dev/null
cat .lab/bench/gap.md
