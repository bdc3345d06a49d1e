"""Shared fixtures: real PostgreSQL 15 servers on 127.0.0.1 (no Docker) and a
runner that executes the collection's modules the way Ansible does, in a
subprocess with their arguments in a JSON file."""

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / ".collections"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
REPL_USER = "repl_test"
REPL_PASSWORD = "s3cret:with\\odd'chars-1234"
ADMIN_PASSWORD = "admin-secret-56789-abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def os_user():
    """PostgreSQL refuses to run as root: use the postgres OS user then."""
    if os.getuid() != 0:
        return pwd.getpwuid(os.getuid())
    return pwd.getpwnam("postgres")


def as_pg_user():
    user = os_user()
    if os.getuid() == 0:
        def drop():
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        return drop
    return None


def pg(tool, *args, check=True, **kw):
    res = subprocess.run([str(PG_BIN / tool), *args], preexec_fn=as_pg_user(), text=True,
                         capture_output=True, **kw)
    if check and res.returncode != 0:
        log = ""
        if tool == "pg_ctl" and "-l" in args:
            log = open(args[args.index("-l") + 1]).read()[-3000:]
        raise AssertionError(f"{tool} {' '.join(args)} failed:\n{res.stdout}{res.stderr}{log}")
    return res


class Server:
    """One PostgreSQL server in a temp directory, started with pg_ctl."""

    def __init__(self, data_dir, port):
        self.data_dir = Path(data_dir)
        self.port = port

    def start(self):
        pg("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "30", "-l", str(self.data_dir.parent / f"{self.port}.log"),
           "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir.parent}", "start")

    def stop(self):
        pg("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", check=False)

    def connect(self, **kw):
        import psycopg2
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                                password=ADMIN_PASSWORD, connect_timeout=5, **kw)
        conn.autocommit = True
        return conn

    def query(self, sql, *params):
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def wait_for(self, sql, expected, timeout=15):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.query(sql)
                if last == expected:
                    return last
            except Exception as exc:  # server still starting
                last = exc
            time.sleep(0.2)
        raise AssertionError(f"{sql!r} gave {last!r}, expected {expected!r} within {timeout}s")


def make_workdir():
    tmp = Path(tempfile.mkdtemp(prefix="selfhost-test-"))
    os.chmod(tmp, 0o755)
    user = os_user()
    os.chown(tmp, user.pw_uid, user.pw_gid)
    return tmp


def initdb(data_dir):
    pwfile = data_dir.parent / f".pw-{data_dir.name}"
    pwfile.write_text(ADMIN_PASSWORD)
    user = os_user()
    os.chown(pwfile, user.pw_uid, user.pw_gid)
    pg("initdb", "-D", str(data_dir), "-U", "postgres", f"--pwfile={pwfile}", "--auth=scram-sha-256")
    pwfile.unlink()
    with open(data_dir / "postgresql.conf", "a") as f:
        f.write("wal_level = replica\nmax_wal_senders = 5\nmax_replication_slots = 5\n"
                "hot_standby = on\nwal_log_hints = on\nfsync = off\n")
    (data_dir / "pg_hba.conf").write_text(
        "local all all scram-sha-256\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        f"host replication {REPL_USER} 127.0.0.1/32 scram-sha-256\n")


@pytest.fixture(scope="session")
def pg_workdir():
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15 binaries are missing in {PG_BIN}: run `make setup`")
    tmp = make_workdir()
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def primary(pg_workdir):
    """A running primary with a replication role and a physical slot."""
    server = Server(pg_workdir / "primary", free_port())
    initdb(server.data_dir)
    server.start()
    server.query(f"CREATE ROLE {REPL_USER} LOGIN REPLICATION PASSWORD %s", REPL_PASSWORD)
    server.query("CREATE TABLE marks(id int primary key, note text)")
    server.query("INSERT INTO marks VALUES (1, 'before clone')")
    yield server
    server.stop()


@pytest.fixture()
def foreign_cluster(pg_workdir):
    """Data directory of another, unrelated cluster (different system identifier)."""
    path = pg_workdir / f"foreign-{time.monotonic_ns()}"
    initdb(path)
    return path


@pytest.fixture()
def target(pg_workdir):
    """Path of a not-yet-existing standby data directory."""
    path = pg_workdir / f"standby-{time.monotonic_ns()}"
    yield path
    Server(path, 0).stop()


def run_module(name, args, check_mode=False):
    """Run plugins/modules/<name>.py as Ansible does; returns (rc, result, raw output)."""
    payload = dict(args)
    if check_mode:
        payload["_ansible_check_mode"] = True
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, f)
        argsfile = f.name
    try:
        env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
        proc = subprocess.run(
            [sys.executable, "-m", f"ansible_collections.selfhost.supabase.plugins.modules.{name}", argsfile],
            capture_output=True, text=True, env=env, timeout=300)
    finally:
        os.unlink(argsfile)
    out = proc.stdout.strip()
    try:
        result = json.loads(out[out.index("{"):])
    except ValueError:
        raise AssertionError(f"module printed no JSON (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, result, proc.stdout + proc.stderr


def admin_args(server):
    return dict(login_host="127.0.0.1", login_port=server.port, login_user="postgres",
                login_password=ADMIN_PASSWORD)


def new_primary(workdir, name):
    server = Server(workdir / name, free_port())
    initdb(server.data_dir)
    server.start()
    server.query(f"CREATE ROLE {REPL_USER} LOGIN REPLICATION PASSWORD %s", REPL_PASSWORD)
    return server


def new_standby(workdir, primary, name, slot=None):
    """Clone primary with the collection's own pg_basebackup module and start it."""
    if slot:
        primary.query("SELECT pg_create_physical_replication_slot(%s, true)", slot)
    target = workdir / name
    rc, res, raw = run_module("pg_basebackup", dict(
        data_dir=str(target), login_host="127.0.0.1", login_port=primary.port,
        login_user=REPL_USER, login_password=REPL_PASSWORD, executor="local",
        os_user=os_user().pw_name, application_name=name, slot_name=slot))
    assert rc == 0, raw
    standby = Server(target, free_port())
    standby.start()
    primary.wait_for(f"SELECT state FROM pg_stat_replication WHERE application_name = '{name}'",
                     [("streaming",)])
    return standby


@pytest.fixture()
def pair(pg_workdir):
    """A fresh primary and a standby streaming from it through slot 's1'."""
    tag = time.monotonic_ns()
    primary = new_primary(pg_workdir, f"p-{tag}")
    standby = new_standby(pg_workdir, primary, f"s_{tag}", slot="s1")
    standby.application_name = f"s_{tag}"
    yield primary, standby
    standby.stop()
    primary.stop()
