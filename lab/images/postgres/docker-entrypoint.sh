#!/bin/bash
# Entrypoint of the supabase/postgres stand-in.  Same contract as the
# official image: as root it fixes ownership and drops to `postgres`; with an
# EMPTY $PGDATA it runs initdb as $POSTGRES_USER, starts a socket-only server
# with the same arguments, runs /docker-entrypoint-initdb.d (top level, then
# init-scripts/, then migrations/), stops it; then it execs the command.
# A $PGDATA that already holds a cluster (e.g. one filled by pg_basebackup)
# is started as it is.
set -Eeuo pipefail

key_file=/etc/postgresql-custom/pgsodium_root.key

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  chown postgres:postgres /etc/postgresql-custom 2>/dev/null || true
  # As gosu in the official image: the server's HOME is its user's (libpq
  # looks there for client certificates when a standby connects over TLS).
  HOME=/var/lib/postgresql exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

# Like the official image: without a root key, make a new random one.
# Replicas must be given the primary's key instead (the roles mount it).
if [ ! -s "$key_file" ]; then
  (umask 077; openssl rand -hex 32 > "$key_file")
fi

run_sql_dir() {
  local f
  for f in "$1"/*; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sql) echo "initdb: running $f"; psql -v ON_ERROR_STOP=1 -q -f "$f" ;;
      *.sh)  echo "initdb: sourcing $f"; . "$f" ;;
    esac
  done
}

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set to initialise a new database}"
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
         --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  shift
  server_opts=$(printf '%q ' "$@")
  pg_ctl -D "$PGDATA" -w -t 60 -o "$server_opts -c listen_addresses=''" start >/dev/null
  export PGHOST=/var/run/postgresql PGUSER="$POSTGRES_USER" PGDATABASE=postgres PGPASSWORD="$POSTGRES_PASSWORD"
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -q -c "create database \"$POSTGRES_DB\""
  fi
  export PGDATABASE="$POSTGRES_DB"
  run_sql_dir /docker-entrypoint-initdb.d
  run_sql_dir /docker-entrypoint-initdb.d/init-scripts
  run_sql_dir /docker-entrypoint-initdb.d/migrations
  # As the official image: the postgres role logs in with POSTGRES_PASSWORD too
  # (Studio and postgres-meta connect as postgres).
  echo "alter role postgres with password :'pw';" | psql -v ON_ERROR_STOP=1 -q -v pw="$POSTGRES_PASSWORD" -f -
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  unset PGHOST PGUSER PGDATABASE PGPASSWORD
  set -- postgres "$@"
  echo "initdb: done"
fi

exec "$@"
