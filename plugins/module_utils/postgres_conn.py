# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""One connection layer for the collection's PostgreSQL modules.

Every module that talks to PostgreSQL builds its argument spec from
``connection_argument_spec()`` and connects with ``connect()``, so connection
errors read the same everywhere and no password ever reaches a message.
"""

from __future__ import annotations

import math
import os
import socket
import traceback

try:
    import psycopg2
    import psycopg2.extras
    PSYCOPG2_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the target host
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib


SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

# The release that drops the collection's deprecated module and option names
# (meta/runtime.yml's plugin_routing names the same one for the old module names).
REMOVAL_VERSION = "1.0.0"
COLLECTION = "selfhost.supabase"


def deprecated_alias(name):
    """An argument spec's deprecated_aliases entry: the older name `name` still works, with a
    deprecation warning, until REMOVAL_VERSION."""
    return dict(name=name, version=REMOVAL_VERSION, collection_name=COLLECTION)


def deprecated_option(**spec):
    """An option that goes away in REMOVAL_VERSION (set, it warns): for an older option whose
    value is not the value of the option that replaces it, so that it cannot be an alias."""
    return dict(spec, removed_in_version=REMOVAL_VERSION, removed_from_collection=COLLECTION)


def with_deprecated_aliases(spec, names):
    """Give spec (one option's) the older names `names`, each deprecated."""
    spec["aliases"] = list(spec.get("aliases", [])) + list(names)
    spec["deprecated_aliases"] = list(spec.get("deprecated_aliases", [])) + [deprecated_alias(n) for n in names]
    return spec


def connection_argument_spec(user="supabase_admin", host=None, deprecated_aliases=None, required=()):
    """The login and TLS options every module that connects to PostgreSQL shares, spelled
    as community.postgresql spells them (doc fragment selfhost.supabase.postgres_login).
    user: login_user's default; host: login_host's default (None: required);
    deprecated_aliases: {option: [older names the module still takes, with a deprecation
    warning, until REMOVAL_VERSION]}; required: options the module cannot do without."""
    spec = dict(
        login_host=dict(type="str", default=host) if host else dict(type="str", required=True),
        login_port=dict(type="int", default=5432),
        login_user=dict(type="str", default=user),
        login_password=dict(type="str", no_log=True),
        login_db=dict(type="str", default="postgres"),
        connect_timeout=dict(type="int", default=5),
        ssl_mode=dict(type="str", default="prefer", choices=SSL_MODES),
        # ssl_rootcert is community.postgresql's alias of ca_cert (and libpq's sslrootcert).
        ca_cert=with_deprecated_aliases(dict(type="path", aliases=["ssl_rootcert"]), ["ssl_root_cert"]),
    )
    for name, names in (deprecated_aliases or {}).items():
        with_deprecated_aliases(spec[name], names)
    for name in required:
        spec[name]["required"] = True
    return spec


def check_tls(module):
    """Refuse a verify-* mode without a readable CA certificate, before anything changes."""
    p = module.params
    if p["ssl_mode"].startswith("verify") and not p["ca_cert"]:
        module.fail_json(msg=f"ssl_mode {p['ssl_mode']} checks the server's certificate: give ca_cert, "
                             "the CA certificate (PEM) that signed it")
    if p["ca_cert"] and not os.access(p["ca_cert"], os.R_OK):
        module.fail_json(msg=f"ca_cert {p['ca_cert']} is not a readable file on this host: give the "
                             "path of the CA certificate (PEM)")


def tls_params(p):
    """libpq parameters (name, value) for the module's TLS options, in conninfo order."""
    params = [("sslmode", p["ssl_mode"])]
    if p.get("ca_cert"):
        params.append(("sslrootcert", p["ca_cert"]))
    return params


def tls_env(p):
    """The same as environment variables, for PostgreSQL's command-line tools."""
    names = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT"}
    return {names[k]: v for k, v in tls_params(p)}


def require_psycopg2(module):
    if psycopg2 is None:
        module.fail_json(msg=missing_required_lib("psycopg2 (Debian: python3-psycopg2)"),
                         exception=PSYCOPG2_IMPORT_ERROR)


def check_port(module, name):
    port = module.params[name]
    if port is not None and not 1 <= port <= 65535:
        module.fail_json(msg=f"{name} must be a TCP port between 1 and 65535, got {port}")


def explain(exc, host, port, user):
    """Say what a failed connection means and what to do, from libpq's message."""
    said = str(exc).strip()
    if "password authentication failed" in said or "no password supplied" in said:
        return (f"the PASSWORD for {user} is wrong or missing (the server said: {said}). "
                "Give the password the server has for that role.")
    if "certificate" in said or "SSL" in said:
        return (f"the TLS connection to {host} failed (the server said: {said}). Check that ca_cert "
                "is the CA that signed the server's certificate and that the certificate names "
                f"{host}.")
    if "no pg_hba.conf entry" in said:
        return (f"{host}'s pg_hba.conf has no line that lets this host's address in as {user} "
                f"(the server said: {said}). Add the address to pg_hba.conf and reload.")
    if "Connection refused" in said or "timeout expired" in said or "could not translate host" in said:
        return (f"nothing answers on {host}:{port} (the server said: {said}). Check that the "
                "database runs, listens on that address and port, and is reachable from this host.")
    return (f"{said}. Check that the server runs and is reachable from this host, that its "
            "pg_hba.conf has a line for this host's address, and the password.")


def connect(module, host, port, user, password, dbname="postgres", replication=False,
            timeout=5, application_name="selfhost.supabase", tls=()):
    """Open a connection (autocommit) or fail the module with a useful message.

    ``replication=True`` opens a physical replication connection, the kind a
    standby uses, which pg_hba.conf matches with its ``replication`` lines.
    """
    require_psycopg2(module)
    kwargs = dict(host=host, port=port, user=user, connect_timeout=timeout,
                  application_name=application_name, **dict(tls))
    if password:
        kwargs["password"] = password
    if replication:
        kwargs["connection_factory"] = psycopg2.extras.PhysicalReplicationConnection
    else:
        kwargs["dbname"] = dbname
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.Error as exc:
        kind = "a replication connection" if replication else f"database {dbname!r}"
        module.fail_json(msg=f"cannot open {kind} on {host}:{port} as {user}: {explain(exc, host, port, user)}")
    if not replication:
        conn.autocommit = True
    return conn


def query_error(exc, sql, where):
    """What a failed statement means and what to do, from the server's SQLSTATE."""
    said = (getattr(exc, "pgerror", None) or str(exc)).strip()
    statement = " ".join(sql.split())[:80]
    code = getattr(exc, "pgcode", None)
    if code == "42501":
        return (f"{where}: the login role may not run `{statement}` (the server said: {said}). Log in as a "
                "superuser (login_user: supabase_admin, the image's POSTGRES_PASSWORD) or grant the role "
                "pg_monitor.")
    if code is None or isinstance(exc, psycopg2.OperationalError):
        return (f"{where}: the connection failed during `{statement}` (the server said: {said}). Check that "
                "the server still runs (docker ps, its log) and run the task again.")
    return f"{where}: `{statement}` failed (the server said: {said}). Check the server's log."


class Cursor:
    """A cursor whose failed statements fail the module with what to do (and
    ``result`` as it stands), never with a traceback."""

    def __init__(self, module, conn, where, result=None):
        self._module = module
        self._cur = conn.cursor()
        self._where = where
        self.result = result if result is not None else {}

    def execute(self, sql, params=None):
        try:
            self._cur.execute(sql, params)
        except psycopg2.Error as exc:
            self._module.fail_json(msg=query_error(exc, sql, self._where), **self.result)

    def __getattr__(self, name):
        return getattr(self._cur, name)


def identify_system(module, conn):
    """Return (system_identifier, timeline, xlogpos) over a replication connection."""
    cur = conn.cursor()
    try:
        cur.execute("IDENTIFY_SYSTEM")
        sysid, timeline, xlogpos = cur.fetchone()[:3]
    except psycopg2.Error as exc:
        module.fail_json(msg=f"IDENTIFY_SYSTEM failed: {str(exc).strip()}")
    return str(sysid), int(timeline), str(xlogpos)


def fetch_dicts(cur, sql, params=None):
    """Run a query and return its rows as dicts keyed by column name."""
    cur.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def lsn_to_int(lsn):
    """'16/B374D848' -> integer position; raises ValueError on anything else."""
    high, _sep, low = str(lsn).partition("/")
    if not high or not low:
        raise ValueError(f"not an LSN: {lsn!r}")
    return (int(high, 16) << 32) + int(low, 16)


def int_to_lsn(value):
    """Integer position -> '16/B374D848' (the inverse of lsn_to_int)."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def server_timeline(cur, in_recovery):
    """Timeline a primary writes, or the one a standby receives (or last replayed)."""
    if not in_recovery:
        cur.execute("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")
        return cur.fetchone()[0]
    cur.execute("SELECT coalesce((SELECT received_tli FROM pg_stat_wal_receiver), "
                "(SELECT timeline_id FROM pg_control_checkpoint()))")
    return cur.fetchone()[0]


def parse_conninfo(conninfo):
    """Split a libpq key=value connection string (as in primary_conninfo) into a dict."""
    if not conninfo.strip():
        return {}
    if psycopg2 is not None:
        from psycopg2.extensions import parse_dsn
        return parse_dsn(conninfo)
    raise ValueError("psycopg2 is required to parse a connection string")


def probe_role(conninfo, timeout):
    """(role, error) of the server a conninfo points at.  role: 'primary' or
    'standby'; None when it does not answer (or answers that it is shutting
    down); 'unknown' when it accepts the connection but the login fails
    (pg_hba.conf, TLS, password), a live server whose role cannot be told, with
    libpq's message as error (None otherwise).

    Uses a replication connection (what pg_hba grants replicas) and SHOW
    in_hot_standby, which walsenders answer.
    """
    kwargs = {k: v for k, v in conninfo.items()
              if k in ("host", "port", "user", "password", "sslmode", "sslrootcert", "passfile")}
    # A dead host is given up after `timeout` seconds (a float): libpq waits at
    # least 2 s, so a plain TCP connection asks first.
    try:
        socket.create_connection((kwargs.get("host") or "localhost", int(kwargs.get("port") or 5432)),
                                 timeout=timeout).close()
    except OSError:
        return None, None
    kwargs["connect_timeout"] = max(2, math.ceil(timeout))
    try:
        conn = psycopg2.connect(connection_factory=psycopg2.extras.PhysicalReplicationConnection, **kwargs)
    except psycopg2.Error as exc:
        error = str(exc).strip()
        return (None, None) if "shutting down" in error else ("unknown", error)
    try:
        return ("standby" if in_recovery(conn) else "primary"), None
    except psycopg2.Error:
        return None, None
    finally:
        conn.close()


def in_recovery(conn):
    """Whether the server behind a (replication or normal) connection is a standby."""
    cur = conn.cursor()
    cur.execute("SHOW in_hot_standby")
    return cur.fetchone()[0] == "on"
