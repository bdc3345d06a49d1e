#!/usr/bin/env bash
# `make demo`: set up this machine, build the lab images, start vm1 + vm2,
# deploy site.yml into them, check that replication works, and say how to
# connect.  Prints the wall time of each phase.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
VENV=$(realpath -m "$VENV")
export PATH="$VENV/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
LAB="$VENV/bin/python lab/selfhost_lab.py"
declare -a TIMES=()

phase() {  # phase NAME COMMAND...
  local name=$1; shift
  printf '\n\033[1m==> %s\033[0m\n' "$name"
  local start=$SECONDS
  if ! "$@"; then
    printf '\ndemo: the "%s" phase failed; the output above says why.\n' "$name" >&2
    case $name in
      setup)  echo "Fix the install step it names, then run make demo again." >&2 ;;
      images) echo "Check the Debian mirror is reachable (apt-get update), then make demo again." >&2 ;;
      lab)    echo "See .lab/dockerd.log; 'make lab-down' then make demo starts the lab afresh." >&2 ;;
      deploy) echo "Re-run 'ansible-playbook site.yml -i inventories/lab' after fixing the task that failed." >&2 ;;
      verify) echo "Inspect with 'make lab-status' and '$LAB psql vm1'." >&2 ;;
    esac
    exit 1
  fi
  TIMES+=("$(printf '%-8s %4ds' "$name" $((SECONDS - start)))")
}

verify() {
  local token="demo-$(date +%s%N)" start lag_ms
  $LAB psql vm1 "CREATE TABLE IF NOT EXISTS demo_probe(token text primary key, at timestamptz default now())" >/dev/null
  $LAB psql vm1 "INSERT INTO demo_probe(token) VALUES ('$token')" >/dev/null
  start=$(date +%s%N)
  for _ in $(seq 1 50); do
    [ "$($LAB psql vm2 "SELECT count(*) FROM demo_probe WHERE token = '$token'" 2>/dev/null)" = 1 ] && break
    sleep 0.1
  done
  [ "$($LAB psql vm2 "SELECT count(*) FROM demo_probe WHERE token = '$token'")" = 1 ] \
    || { echo "a row written on vm1 did not reach vm2 within 5 s" >&2; return 1; }
  lag_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "  replication on vm1:     $($LAB psql vm1 "SELECT application_name || ' ' || state || ' from ' || client_addr FROM pg_stat_replication")"
  echo "  slot on vm1:            $($LAB psql vm1 "SELECT slot_name || ' active=' || active FROM pg_replication_slots")"
  echo "  row written on vm1 read on vm2 after ${lag_ms} ms"
  if $LAB psql vm2 "CREATE TABLE demo_write(x int)" >/dev/null 2>&1; then
    echo "vm2 accepted a write: it is not a standby" >&2; return 1
  fi
  echo "  write on vm2 refused:   read-only standby (pg_is_in_recovery = $($LAB psql vm2 'SELECT pg_is_in_recovery()'))"
  echo "  running on vm1:         $(docker exec selfhost-lab-vm1 docker ps --format '{{.Names}} ({{.Status}})' | paste -sd, -)"
  echo "  running on vm2:         $(docker exec selfhost-lab-vm2 docker ps --format '{{.Names}} ({{.Status}})' | paste -sd, -)"
  echo "  health screen:"
  ansible-playbook playbooks/status.yml -i inventories/lab | sed -n '/HOST /,/HEALTHY/p' | sed "s/^ *- /    /; /^ *''\$/d"
}

phase setup  bash scripts/setup.sh
phase images $LAB images
phase lab    $LAB up vm1 vm2
phase deploy ansible-playbook site.yml -i inventories/lab
phase verify verify

cat <<MSG

Self-hosted Supabase lab is up: all 13 services rendered and validated on vm1;
the database and postgres-meta run (the others' images cannot be built here:
README, "In the lab only the database and postgres-meta run").
  primary  vm1  172.30.0.11:5433  (published for replicas only)
  replica  vm2  172.30.0.12:5432  (read-only)
  psql on the primary:   $LAB psql vm1
  psql on the replica:   $LAB psql vm2
  secrets (lab only):    inventories/lab/.secrets/ (supabase-secrets.yml: JWT_SECRET, API keys, ...)
  health:                ansible-playbook playbooks/status.yml -i inventories/lab
  lab VMs:               make lab-status | make lab-down

Wall time per phase:
MSG
printf '  %s\n' "${TIMES[@]}"
echo "Memory of the lab VMs (each runs its own Docker engine and containers):"
docker stats --no-stream --format '{{.Name}}  {{.MemUsage}}' selfhost-lab-vm1 selfhost-lab-vm2 | sed 's/^/  /'
