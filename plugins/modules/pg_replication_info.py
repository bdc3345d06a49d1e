#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_replication_info
short_description: Report and check PostgreSQL streaming replication health
version_added: 0.1.0
description:
  - On a primary, reports every replication slot (type, active, wal_status, retained WAL)
    and every connected standby (state, sync_state, write/flush/replay lag in bytes and seconds).
  - On a standby, reports the recovery state, received and replayed LSN, the WAL receiver
    and the replay delay.
  - Optionally asserts health (expected standbys streaming, slots active, lag under limits,
    a given LSN replayed), and can wait up to O(wait_timeout) seconds until it holds; fails with
    a message naming what is unhealthy.
  - Never changes anything.
  - Called C(selfhost.supabase.pg_replication_status) before; that name is redirected here, with a
    deprecation warning, until 1.0.0.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - selfhost.supabase.postgres_login
author:
  - selfhost.supabase contributors (!UNKNOWN)
attributes:
  check_mode:
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  login_host:
    description: Host of the server to inspect.
    type: str
    default: 127.0.0.1
  login_port:
    description: Port of the server to inspect.
    type: int
    default: 5432
  login_user:
    description: Role to log in as; needs C(pg_read_all_stats) or superuser to see lag details.
    type: str
    default: supabase_admin
  connect_timeout:
    description: Seconds to wait for a connection.
    type: int
    default: 5
  expected_role:
    description: Fail unless the server is this (V(primary) or V(standby)).
    type: str
    choices: [primary, standby]
  expected_standbys:
    description: On a primary, application names that must be connected and streaming.
    type: list
    elements: str
    default: []
  expected_slots:
    description: On a primary, replication slots that must exist and be active.
    type: list
    elements: str
    default: []
  max_lag_bytes:
    description: Unhealthy when a standby's replay lag (primary) or the receive/replay gap (standby) is larger.
    type: int
  max_lag_seconds:
    description: Unhealthy when a standby's replay lag (primary) or the replay delay (standby) is longer.
    type: float
  max_inactive_slot_bytes:
    description:
      - Unhealthy when a slot that no consumer uses (inactive, and not in O(expected_slots)) keeps more
        WAL than this many bytes from being removed, on a primary or a standby; such a slot fills the
        disk until C(max_slot_wal_keep_size) invalidates it.
    type: int
  replayed_lsn:
    description: On a standby, unhealthy until it has replayed at least this LSN (e.g. V(0/3000148)).
    type: str
  assert_healthy:
    description: Fail when any check above does not hold (after waiting O(wait_timeout)).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to keep re-checking until healthy; 0 checks once.
      - The alias O(timeout) is deprecated and will be removed in 1.0.0; use O(wait_timeout).
    type: int
    default: 0
    aliases: [timeout]
requirements:
  - psycopg2 (Debian package python3-psycopg2)
"""

EXAMPLES = r"""
- name: Wait until both replicas stream with less than 16 MB of lag
  selfhost.supabase.pg_replication_info:
    login_host: 10.0.0.11
    login_port: 5433
    login_password: "{{ cluster_postgres_password }}"
    expected_role: primary
    expected_standbys: [vm2, vm3]
    expected_slots: [vm2, vm3]
    max_lag_bytes: 16777216
    assert_healthy: true
    wait_timeout: 60

- name: Wait until a standby has replayed the old primary's last LSN
  selfhost.supabase.pg_replication_info:
    login_host: 10.0.0.12
    login_password: "{{ cluster_postgres_password }}"
    expected_role: standby
    replayed_lsn: "{{ last_lsn }}"
    assert_healthy: true
    wait_timeout: 30
"""

RETURN = r"""
role:
  description: V(primary) or V(standby).
  returned: always
  type: str
  sample: primary
timeline:
  description: Timeline the server writes (primary) or receives (standby).
  returned: always
  type: int
  sample: 1
current_lsn:
  description: Primary's current write LSN; on a standby the last replayed LSN.
  returned: always
  type: str
  sample: 0/3000148
slots:
  description: Replication slots (primary and standby).
  returned: always
  type: list
  elements: dict
  sample: [{name: vm2, type: physical, active: true, wal_status: reserved, retained_bytes: 0}]
standbys:
  description: Connected standbys (primary).
  returned: always
  type: list
  elements: dict
  sample: [{application_name: vm2, client_addr: 10.0.0.12, state: streaming, sync_state: async,
            write_lag_bytes: 0, flush_lag_bytes: 0, replay_lag_bytes: 0,
            write_lag_seconds: 0.001, flush_lag_seconds: 0.001, replay_lag_seconds: 0.002}]
standby:
  description: Recovery details (standby only).
  returned: when role is standby
  type: dict
  sample: {receive_lsn: 0/3000148, replay_lsn: 0/3000148, receiver_status: streaming,
           sender_host: 10.0.0.11, sender_port: 5433, slot_name: vm2,
           replay_delay_seconds: 0.0, receive_replay_gap_bytes: 0}
healthy:
  description: Whether every requested check holds.
  returned: always
  type: bool
  sample: true
problems:
  description: What is unhealthy, one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["standby vm3 is not connected"]
waited_seconds:
  description: How long the module waited for health.
  returned: always
  type: float
  sample: 0.0
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.supabase.plugins.module_utils.postgres_conn import (
    Cursor, check_port, check_tls, connect, connection_argument_spec, fetch_dicts, lsn_to_int, server_timeline, tls_params,
    with_deprecated_aliases)

# What pg_stat_replication hides from a login without the privilege to read it.
NO_STATS = ("its state and lag are hidden from {user}: grant it pg_read_all_stats (or pg_monitor), or log in "
            "as a superuser")

SLOTS_SQL = """
SELECT slot_name AS name, slot_type AS type, active, wal_status::text AS wal_status,
       CASE WHEN restart_lsn IS NULL THEN NULL ELSE
         pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                              ELSE pg_current_wal_lsn() END, restart_lsn)::bigint END AS retained_bytes
FROM pg_replication_slots ORDER BY slot_name
"""

STANDBYS_SQL = """
SELECT application_name, host(client_addr) AS client_addr, state, sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn)::bigint AS write_lag_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint AS flush_lag_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS replay_lag_bytes,
       coalesce(extract(epoch FROM write_lag), 0)::float AS write_lag_seconds,
       coalesce(extract(epoch FROM flush_lag), 0)::float AS flush_lag_seconds,
       coalesce(extract(epoch FROM replay_lag), 0)::float AS replay_lag_seconds
FROM pg_stat_replication ORDER BY application_name
"""

STANDBY_SQL = """
SELECT pg_last_wal_receive_lsn()::text AS receive_lsn, pg_last_wal_replay_lsn()::text AS replay_lsn,
       r.status AS receiver_status, r.sender_host, r.sender_port, r.slot_name,
       coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint
         AS receive_replay_gap_bytes,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float
         AS replay_delay_seconds
FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true
"""


def read_state(cur):
    cur.execute("SELECT pg_is_in_recovery()")
    in_recovery = cur.fetchone()[0]
    state = dict(role="standby" if in_recovery else "primary", timeline=server_timeline(cur, in_recovery),
                 slots=fetch_dicts(cur, SLOTS_SQL), standbys=[])
    if in_recovery:
        state["standby"] = fetch_dicts(cur, STANDBY_SQL)[0]
        state["current_lsn"] = state["standby"]["replay_lsn"]
    else:
        cur.execute("SELECT pg_current_wal_lsn()::text")
        state["current_lsn"] = cur.fetchone()[0]
        state["standbys"] = fetch_dicts(cur, STANDBYS_SQL)
    return state


def problems_of(state, p):
    found = []
    if p["expected_role"] and state["role"] != p["expected_role"]:
        found.append(f"the server is a {state['role']}, expected a {p['expected_role']}")
    by_name = {s["application_name"]: s for s in state["standbys"]}
    for name in p["expected_standbys"]:
        s = by_name.get(name)
        if s is None:
            found.append(f"standby {name} is not connected")
        elif s["state"] is None:
            found.append(f"standby {name} is connected, but " + NO_STATS.format(user=p["login_user"]))
        elif s["state"] != "streaming":
            found.append(f"standby {name} is {s['state']}, not streaming")
    slots = {s["name"]: s for s in state["slots"]}
    for name in p["expected_slots"]:
        if name not in slots:
            found.append(f"slot {name} does not exist: its standby cannot resume after a disconnect "
                         "(site.yml --tags replica creates it again)")
        elif not slots[name]["active"]:
            found.append(f"slot {name} is not active (wal_status {slots[name]['wal_status']}, "
                         f"{slots[name]['retained_bytes']} bytes retained)")
        elif slots[name]["wal_status"] == "lost":
            found.append(f"slot {name} has lost WAL its standby needs: re-clone that standby")
    if p["max_inactive_slot_bytes"] is not None:
        for s in state["slots"]:
            if (not s["active"] and s["name"] not in p["expected_slots"] and s["retained_bytes"] is not None
                    and s["retained_bytes"] > p["max_inactive_slot_bytes"]):
                found.append(f"slot {s['name']} is used by nothing and holds {s['retained_bytes']} bytes of WAL "
                             f"(max {p['max_inactive_slot_bytes']}): drop it when nothing will stream from it "
                             f"again (SELECT pg_drop_replication_slot('{s['name']}')), or bring its consumer back")
    for s in state["standbys"]:
        if (p["max_lag_bytes"] is not None or p["max_lag_seconds"] is not None) and s["replay_lag_bytes"] is None:
            if s["application_name"] not in p["expected_standbys"]:
                found.append(f"standby {s['application_name']}'s lag cannot be checked: "
                             + NO_STATS.format(user=p["login_user"]))
            continue
        if p["max_lag_bytes"] is not None and s["replay_lag_bytes"] > p["max_lag_bytes"]:
            found.append(f"standby {s['application_name']} lags {s['replay_lag_bytes']} bytes "
                         f"(max {p['max_lag_bytes']})")
        if p["max_lag_seconds"] is not None and s["replay_lag_seconds"] > p["max_lag_seconds"]:
            found.append(f"standby {s['application_name']} lags {s['replay_lag_seconds']:.3f} s "
                         f"(max {p['max_lag_seconds']})")
    sb = state.get("standby")
    if sb:
        if p["expected_role"] == "standby" and sb["receiver_status"] != "streaming":
            found.append(f"the WAL receiver is {sb['receiver_status'] or 'not running'}, not streaming")
        if p["max_lag_bytes"] is not None and sb["receive_replay_gap_bytes"] > p["max_lag_bytes"]:
            found.append(f"replay is {sb['receive_replay_gap_bytes']} bytes behind what was received "
                         f"(max {p['max_lag_bytes']})")
        if p["max_lag_seconds"] is not None and sb["replay_delay_seconds"] > p["max_lag_seconds"]:
            found.append(f"replay is {sb['replay_delay_seconds']:.3f} s behind (max {p['max_lag_seconds']})")
    if p["replayed_lsn"]:
        have = state["current_lsn"] if state["role"] == "standby" else None
        if have is None:
            found.append("replayed_lsn applies to a standby, but the server is a primary")
        elif lsn_to_int(have) < lsn_to_int(p["replayed_lsn"]):
            found.append(f"replayed up to {have}, not yet {p['replayed_lsn']}")
    return found


def main():
    argument_spec = connection_argument_spec(host="127.0.0.1")
    argument_spec.update(
        expected_role=dict(type="str", choices=["primary", "standby"]),
        expected_standbys=dict(type="list", elements="str", default=[]),
        expected_slots=dict(type="list", elements="str", default=[]),
        max_lag_bytes=dict(type="int"),
        max_lag_seconds=dict(type="float"),
        max_inactive_slot_bytes=dict(type="int"),
        replayed_lsn=dict(type="str"),
        assert_healthy=dict(type="bool", default=False),
        wait_timeout=with_deprecated_aliases(dict(type="int", default=0), ["timeout"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    check_port(module, "login_port")
    check_tls(module)
    for name in ("max_lag_bytes", "max_lag_seconds", "max_inactive_slot_bytes", "wait_timeout"):
        if p[name] is not None and p[name] < 0:
            module.fail_json(msg=f"{name} must not be negative, got {p[name]}")
    if p["replayed_lsn"]:
        try:
            lsn_to_int(p["replayed_lsn"])
        except ValueError:
            module.fail_json(msg=f"replayed_lsn {p['replayed_lsn']!r} is not an LSN like 0/3000148")

    conn = connect(module, p["login_host"], p["login_port"], p["login_user"], p["login_password"],
                   p["login_db"], timeout=p["connect_timeout"], tls=tls_params(p))
    started = time.monotonic()
    try:
        cur = Cursor(module, conn, f"{p['login_host']}:{p['login_port']}")
        while True:
            state = read_state(cur)
            problems = problems_of(state, p)
            if not problems or time.monotonic() - started >= p["wait_timeout"]:
                break
            time.sleep(0.5)
    finally:
        conn.close()
    result = dict(changed=False, healthy=not problems, problems=problems,
                  waited_seconds=round(time.monotonic() - started, 3), **state)
    if problems and p["assert_healthy"]:
        where = f"{p['login_host']}:{p['login_port']}"
        module.fail_json(msg=f"replication on {where} is unhealthy: " + "; ".join(problems), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
