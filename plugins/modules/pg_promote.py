#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_promote
short_description: Promote a PostgreSQL standby to primary, with a split-brain guard
version_added: 0.1.0
description:
  - Promotes a running standby with C(pg_promote(wait => true)); the server is not restarted.
  - Optionally waits first until the standby has replayed a given LSN (a planned
    switchover passes the old primary's last LSN so nothing committed is lost).
  - Refuses when the server it streams from still answers as a primary, or accepts the
    connection but refuses the login (so its role cannot be told), unless
    O(old_primary_fenced=true) says the operator has fenced it.
  - A server that already was promoted (a primary on a timeline after the first) is left
    alone (changed=false). A primary still on timeline 1 was never a standby, so the module
    refuses it (pointing it at the wrong host is the likelier mistake).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - selfhost.supabase.postgres_login
author:
  - selfhost.supabase contributors (!UNKNOWN)
attributes:
  check_mode:
    support: full
    details: Runs every check (role, guard, replayed LSN) and reports whether it would promote.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  login_host:
    description: Host of the standby to promote.
    type: str
    default: 127.0.0.1
  login_port:
    description: Port of the standby.
    type: int
    default: 5432
  login_user:
    description: Superuser (or a role allowed to run pg_promote) on the standby.
    type: str
    default: supabase_admin
  connect_timeout:
    description: Seconds to wait for a connection to the standby.
    type: int
    default: 5
  upstream_timeout:
    description:
      - Seconds to wait for the standby's upstream to answer the split-brain check; an upstream
        that does not answer within them counts as gone (a failover promotes sooner).
    type: float
    default: 2.0
  replayed_lsn:
    description: Wait until the standby has replayed at least this LSN before promoting.
    type: str
  wait_timeout:
    description: Seconds to wait for O(replayed_lsn) and for the promotion itself.
    type: int
    default: 60
  old_primary_fenced:
    description:
      - The operator guarantees the old primary cannot accept writes (stopped, powered off,
        cut from the network). Skips the split-brain guard.
    type: bool
    default: false
requirements:
  - psycopg2 (Debian package python3-psycopg2)
"""

EXAMPLES = r"""
- name: Promote vm2 once it has replayed everything the old primary wrote
  selfhost.supabase.pg_promote:
    login_host: 10.0.0.12
    login_password: "{{ cluster_postgres_password }}"
    replayed_lsn: "{{ old_primary_last_lsn }}"

- name: Fail over after VM1 died and was fenced
  selfhost.supabase.pg_promote:
    login_host: 10.0.0.12
    login_password: "{{ cluster_postgres_password }}"
    old_primary_fenced: true
"""

RETURN = r"""
promoted:
  description: Whether the server was promoted by this run (or would be, in check mode).
  returned: always
  type: bool
  sample: true
timeline:
  description: The server's timeline after the run (before it, in check mode).
  returned: always
  type: int
  sample: 2
previous_timeline:
  description: Timeline before the promotion.
  returned: always
  type: int
  sample: 1
seconds:
  description: How long pg_promote took.
  returned: always
  type: float
  sample: 0.21
replay_lsn:
  description: Last LSN the standby had replayed when it was promoted.
  returned: always
  type: str
  sample: 0/3000148
upstream:
  description:
    - What the guard found at the server's upstream (host, port, answered, role).
    - role is primary, standby, unknown (it accepted the connection but refused the login) or null.
  returned: always
  type: dict
  sample: {host: 10.0.0.11, port: 5433, answered: false, role: null}
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.supabase.plugins.module_utils.postgres_conn import (
    Cursor, check_port, check_tls, connect, connection_argument_spec, lsn_to_int, parse_conninfo, probe_role, server_timeline,
    tls_params)


def upstream_of(cur):
    cur.execute("SHOW primary_conninfo")
    info = parse_conninfo(cur.fetchone()[0] or "")
    return info


def main():
    argument_spec = connection_argument_spec(host="127.0.0.1")
    argument_spec.update(
        replayed_lsn=dict(type="str"),
        wait_timeout=dict(type="int", default=60),
        upstream_timeout=dict(type="float", default=2.0),
        old_primary_fenced=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    check_port(module, "login_port")
    check_tls(module)
    if p["upstream_timeout"] <= 0:
        module.fail_json(msg=f"upstream_timeout must be a positive number of seconds, got {p['upstream_timeout']}")
    if p["wait_timeout"] <= 0:
        module.fail_json(msg=f"wait_timeout must be a positive number of seconds, got {p['wait_timeout']}")
    if p["replayed_lsn"]:
        try:
            target = lsn_to_int(p["replayed_lsn"])
        except ValueError:
            module.fail_json(msg=f"replayed_lsn {p['replayed_lsn']!r} is not an LSN like 0/3000148")

    conn = connect(module, p["login_host"], p["login_port"], p["login_user"], p["login_password"],
                   p["login_db"], timeout=p["connect_timeout"], tls=tls_params(p))
    cur = Cursor(module, conn, f"{p['login_host']}:{p['login_port']}")
    cur.execute("SELECT pg_is_in_recovery()")
    in_recovery = cur.fetchone()[0]
    timeline = server_timeline(cur, in_recovery)
    result = dict(changed=False, promoted=False, timeline=timeline, previous_timeline=timeline, seconds=0.0,
                  replay_lsn=None, upstream={})
    cur.result = result
    if not in_recovery and timeline == 1:
        module.fail_json(msg=f"{p['login_host']}:{p['login_port']} is a primary that was never a standby "
                             "(timeline 1): there is nothing to promote. Point login_host at the standby "
                             "to promote.", **result)
    if not in_recovery:
        cur.execute("SELECT pg_current_wal_lsn()::text")
        result["replay_lsn"] = cur.fetchone()[0]
        module.exit_json(**result)

    info = upstream_of(cur)
    upstream = dict(host=info.get("host"), port=int(info["port"]) if info.get("port") else None,
                    answered=False, role=None)
    if not p["old_primary_fenced"] and upstream["host"]:
        upstream["role"], error = probe_role(info, p["upstream_timeout"])
        upstream["answered"] = upstream["role"] is not None
    result["upstream"] = upstream
    if upstream["role"] == "unknown":
        module.fail_json(msg=(f"refusing to promote {p['login_host']}:{p['login_port']}: the server it streams "
                              f"from, {upstream['host']}:{upstream['port']}, accepts connections but could not "
                              f"be asked whether it is a primary ({error.splitlines()[0]}). Fix that login "
                              "(pg_hba.conf, TLS, the replication password) or stop or fence that server first "
                              "(or, when it cannot take writes any more, set old_primary_fenced: true)."),
                         **result)
    if upstream["role"] == "primary":
        module.fail_json(msg=(f"refusing to promote {p['login_host']}:{p['login_port']}: the server it streams "
                              f"from, {upstream['host']}:{upstream['port']}, still answers as a primary, and two "
                              "primaries would split the data. Stop or fence it first (or, when it cannot take "
                              "writes any more, set old_primary_fenced: true)."), **result)

    deadline = time.monotonic() + p["wait_timeout"]
    while True:
        cur.execute("SELECT pg_last_wal_replay_lsn()::text")
        result["replay_lsn"] = cur.fetchone()[0]
        if not p["replayed_lsn"] or (result["replay_lsn"] and lsn_to_int(result["replay_lsn"]) >= target):
            break
        if time.monotonic() >= deadline:
            module.fail_json(msg=(f"the standby replayed only up to {result['replay_lsn']} within "
                                  f"{p['wait_timeout']} s, not {p['replayed_lsn']}: it is not caught up, "
                                  "so promoting it now would lose writes. Check that it streams."), **result)
        time.sleep(0.1)

    result["changed"] = True
    if module.check_mode:
        result["promoted"] = True
        module.exit_json(**result)
    started = time.monotonic()
    cur.execute("SELECT pg_promote(wait => true, wait_seconds => %s)", (p["wait_timeout"],))
    result["seconds"] = round(time.monotonic() - started, 3)
    if not cur.fetchone()[0]:
        module.fail_json(msg=(f"the promotion was requested but had not finished after {p['wait_timeout']} s: "
                              "the server may still finish it. Ask it (SELECT pg_is_in_recovery()) and read "
                              "its log before you act on it."), **result)
    result["promoted"] = True
    result["timeline"] = server_timeline(cur, False)
    conn.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
