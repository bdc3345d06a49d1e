#!/usr/bin/env bash
# `make demo`: set up this machine, build the lab images, start the
# production shape (vm1 + vm2 the database VMs, vm3 the witness, the backup
# repository host and the lab's S3), deploy site.yml into it (auto mode,
# backups), check that replication works, show the
# health screen, and say how to connect.  Prints the wall time of each phase.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
VENV=$(realpath -m "$VENV")
export PATH="$VENV/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
LAB="$VENV/bin/python lab/selfhost_lab.py"
INVENTORY=inventories/lab-production
PREFIX=${SELFHOST_LAB_PREFIX:-selfhost-lab}
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
      deploy) echo "Re-run 'ansible-playbook site.yml -i $INVENTORY' after fixing the task that failed." >&2 ;;
      verify) echo "Inspect with 'make lab-status' and '$LAB psql vm1'." >&2 ;;
    esac
    exit 1
  fi
  TIMES+=("$(printf '%-8s %4ds' "$name" $((SECONDS - start)))")
}

# The member Patroni made the leader (vm1 on a first deploy) and the other database VM.
leader() {
  $LAB psql vm1 "SELECT NOT pg_is_in_recovery()" 2>/dev/null | grep -qx t && echo vm1 || echo vm2
}

primary=vm1 standby=vm2
verify() {
  primary=$(leader); standby=$([ "$primary" = vm1 ] && echo vm2 || echo vm1)
  local token="demo-$(date +%s%N)" start lag_ms
  $LAB psql $primary "CREATE TABLE IF NOT EXISTS demo_probe(token text primary key, at timestamptz default now())" >/dev/null
  $LAB psql $primary "INSERT INTO demo_probe(token) VALUES ('$token')" >/dev/null
  start=$(date +%s%N)
  for _ in $(seq 1 50); do
    [ "$($LAB psql $standby "SELECT count(*) FROM demo_probe WHERE token = '$token'" 2>/dev/null)" = 1 ] && break
    sleep 0.1
  done
  [ "$($LAB psql $standby "SELECT count(*) FROM demo_probe WHERE token = '$token'")" = 1 ] \
    || { echo "a row written on $primary did not reach $standby within 5 s" >&2; return 1; }
  lag_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "  replication on $primary:     $($LAB psql $primary "SELECT application_name || ' ' || state || ' ' || sync_state || ' from ' || client_addr FROM pg_stat_replication")"
  echo "  row written on $primary read on $standby after ${lag_ms} ms"
  if $LAB psql $standby "CREATE TABLE demo_write(x int)" >/dev/null 2>&1; then
    echo "$standby accepted a write: it is not a standby" >&2; return 1
  fi
  echo "  write on $standby refused:   read-only standby (pg_is_in_recovery = $($LAB psql $standby 'SELECT pg_is_in_recovery()'))"
  for vm in vm1 vm2 vm3; do
    echo "  running on $vm:         $(docker exec "$PREFIX-$vm" docker ps --format '{{.Names}}' | paste -sd, -)"
  done
  echo "  health screen:"
  ansible-playbook playbooks/status.yml -i $INVENTORY | sed -n '/HOST /,/HEALTHY/p' | sed "s/^ *- /    /; s/^ *'\(.*\)'\$/    \1/; /^ *''\$/d"
}

phase setup  bash scripts/setup.sh
phase images $LAB images
lab() { $LAB up vm1 vm2 vm3 && $LAB s3 vm3; }
phase lab    lab
phase deploy ansible-playbook site.yml -i $INVENTORY
phase verify verify

NET=$(echo "${SELFHOST_LAB_SUBNET:-172.30.0.0/24}" | cut -d/ -f1 | cut -d. -f1-3)
cat <<MSG

Self-hosted Supabase, the production shape, is up in the lab: auto mode
(Patroni decides; etcd on vm1, vm2 and the witness vm3), backups to the
repository host vm3 and to S3 (the lab's s3rver on vm3).  All 13 services are rendered and validated; the database and
postgres-meta run (the others' images cannot be built here: README, "In the
lab only the database and postgres-meta run").
  leader   $primary  (Patroni's; the stack runs where it is)
  replica  $standby  (read-only)
  primary port (HAProxy, follows the leader):  $NET.10:5434
  read port (replicas, else the primary):      $NET.10:5435
  psql on the leader:    $LAB psql $primary
  psql on the replica:   $LAB psql $standby
  secrets (lab only):    inventories/lab/.secrets/ (supabase-secrets.yml: JWT_SECRET, API keys, ...)
  health:                ansible-playbook playbooks/status.yml -i $INVENTORY
  a backup now:          ansible-playbook playbooks/backup.yml -i $INVENTORY
  switch over:           ansible-playbook playbooks/switchover.yml -i $INVENTORY -e new_primary=$standby
  lab VMs:               make lab-status | make lab-down

Wall time per phase:
MSG
printf '  %s\n' "${TIMES[@]}"
echo "Memory of the lab VMs (each runs its own Docker engine and containers):"
docker stats --no-stream --format '{{.Name}}  {{.MemUsage}}' "$PREFIX-vm1" "$PREFIX-vm2" "$PREFIX-vm3" | sed 's/^/  /'
