#!/usr/bin/env bash
# Wall time of site.yml on the lab (1 master + 1 replica): a first deploy on
# fresh VMs, then a re-run that should change nothing.  A measurement, not a
# test: it prints the figures and the re-run's changed count, and asserts
# nothing about speed.
#   bench/deploy_time.sh            fresh VMs first (wipes what ran in them)
#   FRESH=0 bench/deploy_time.sh    time only the re-run on the deployed lab
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
INV=${INV:-inventories/lab}
OUT=.lab/bench
mkdir -p "$OUT"

timed() {  # timed NAME: run site.yml, log it, print seconds
  local start end
  start=$(date +%s.%N)
  ansible-playbook site.yml -i "$INV" > "$OUT/deploy-$1.log" 2>&1 || {
    echo "site.yml failed ($1): see $OUT/deploy-$1.log" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }' 
}

if [ "${FRESH:-1}" = 1 ]; then
  "$VENV/bin/python" lab/selfhost_lab.py up --fresh vm1 vm2 > "$OUT/deploy-lab.log"
  first=$(timed first)
  echo "first deploy (fresh vm1 + vm2):  ${first} s"
fi
noop=$(timed noop)
changed=$(grep -Eo 'changed=[0-9]+' "$OUT/deploy-noop.log" | cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }')
echo "re-run (no change expected):     ${noop} s, changed=${changed}"
