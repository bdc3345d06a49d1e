# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""The one place that decides what state the cluster is in: which host is the
primary, which are standbys, the mode, and what is wrong.  Every playbook runs
the discover role, which feeds this filter what each host answered
(roles/discover/tasks/read.yml) and puts its answer into in-memory groups.

Documentation: supabase_cluster_state.yml beside this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

ROLES = ("primary", "standby", "down")


def _hosts(value, what):
    if value is None:
        return []
    if isinstance(value, str) or not all(isinstance(h, str) for h in value):
        raise AnsibleFilterError(f"supabase_cluster_state: {what} must be a list of host names")
    return list(value)


def supabase_cluster_state(actual, master, replica, patroni_leader=None):
    """The cluster's state from what each host answered (actual: host -> its answer, a
    host missing from it did not answer at all), the inventory's master and replica
    groups, and, in auto mode, the member Patroni names as its leader ('' when it could
    not be asked)."""
    if not isinstance(actual, dict):
        raise AnsibleFilterError("supabase_cluster_state: the input must map each host to what it answered")
    master = _hosts(master, "the master group")
    replica = _hosts(replica, "the replica group")
    hosts = master + [h for h in replica if h not in master]
    if not hosts:
        raise AnsibleFilterError("supabase_cluster_state: the inventory names no database host (master group empty)")
    unknown = sorted(set(actual) - set(hosts))
    if unknown:
        raise AnsibleFilterError(f"supabase_cluster_state: {', '.join(unknown)} answered but are not database hosts "
                                 "of the inventory")
    answer = {h: dict(actual[h] or {}) for h in hosts if h in actual}
    for host, state in answer.items():
        if state.get("role", "down") not in ROLES:
            raise AnsibleFilterError(f"supabase_cluster_state: {host} answered role {state.get('role')!r}, not one "
                                     f"of {', '.join(ROLES)}")

    def having(key, value):
        return [h for h in hosts if h in answer and answer[h].get(key, "down" if key == "role" else None) == value]

    fenced = [h for h in hosts if answer.get(h, {}).get("fenced")]
    # Every host that answers as a primary, fenced or not (a fenced one answering is a fault).
    primaries = having("role", "primary")
    standbys = having("role", "standby")
    down = having("role", "down")
    unreachable = [h for h in hosts if h not in answer]
    fresh = not unreachable and all(answer[h].get("data", "none") == "none" for h in hosts)
    mode = "auto" if any(answer[h].get("patroni") for h in answer) else "manual"
    journals = [answer[h]["journal"] for h in hosts if h in answer and answer[h].get("journal")]
    leader = (patroni_leader or "") if mode == "auto" else ""
    inventory_primary = master[0]
    problems = []

    primary, source = "", ""
    if len(primaries) > 1:
        timelines = ", ".join(str(answer[h].get("timeline", "?")) for h in primaries)
        problems.append(f"{' and '.join(primaries)} all answer as primary (timelines {timelines}): split brain. The "
                        "highest timeline is the current history; bring the others back with playbooks/rejoin.yml "
                        "-e host=HOST.")
    elif leader and leader not in hosts:
        problems.append(f"Patroni names {leader} its leader, which is not a database host of this inventory.")
    elif leader and primaries and leader != primaries[0]:
        problems.append(f"Patroni names {leader} its leader but {primaries[0]} answers as the primary: wait for "
                        "Patroni to settle (a change of leader in progress) and run again.")
    elif primaries and primaries[0] in fenced:
        problems.append(f"{primaries[0]} is a fenced former primary but answers as a primary: stop its stack and "
                        f"bring it back with playbooks/rejoin.yml -e host={primaries[0]}.")
    elif primaries:
        primary, source = primaries[0], "hosts"
    elif leader and leader not in fenced:
        # Patroni has a leader whose database does not answer this run: it decides.
        primary, source = leader, "patroni"
    elif fresh:
        primary, source = inventory_primary, "inventory"
    else:
        kept = [h for h in having("data", "primary") if h not in fenced]
        if len(kept) == 1 and kept[0] in down:
            # A primary's data on a host whose database is merely stopped.
            primary, source = kept[0], "data"
        problems.append("No database host answers as a primary"
                        + (f" ({', '.join(unreachable)} did not answer at all)" if unreachable else "")
                        + ": start it again, or, if it is lost, run playbooks/failover.yml.")
    if len(journals) > 0:
        op = journals[0]
        problems.append(f"A {op.get('op')} to {op.get('to')} is half done (since {op.get('started')}): finish it "
                        f"first (run playbooks/{op.get('op')}.yml again).")
    # Of the hosts answering as a primary, the one on the highest timeline (the current
    # history when there are two); '' when none answers or the highest is shared.
    ranked = sorted(primaries, key=lambda h: -int(answer[h].get("timeline") or 0))
    newest = ranked[0] if len(ranked) == 1 or (ranked and int(answer[ranked[0]].get("timeline") or 0) > int(
        answer[ranked[1]].get("timeline") or 0)) else ""
    stale = bool(primary) and source in ("hosts", "patroni") and primary != inventory_primary and mode == "manual"
    return dict(
        primary=primary,
        source=source,
        # The host the health checks compare the others with.
        reference=primary or inventory_primary,
        primaries=primaries,
        newest_primary=newest,
        standbys=standbys,
        # Hosts that should follow the primary (every database host but it).
        followers=[h for h in hosts if h != (primary or inventory_primary)],
        down=down,
        unreachable=unreachable,
        fenced=fenced,
        fresh=fresh,
        mode=mode,
        patroni_leader=leader,
        inventory_primary=inventory_primary,
        stale_inventory=stale,
        operation=journals[0] if journals else {},
        problems=problems,
    )


def supabase_inventory_problem(state, master_group="master", replica_group="replica"):
    """Why site.yml must not act on this cluster ('' when it may): the inventory's master
    must be the cluster's primary in manual mode, nothing half done, no split brain."""
    if not isinstance(state, dict) or "problems" not in state:
        raise AnsibleFilterError("supabase_inventory_problem: the input must be supabase_cluster_state's answer")
    if state["operation"]:
        op = state["operation"]
        return (f"A {op.get('op')} to {op.get('to')} is half done (since {op.get('started')}): finish it first "
                f"(run playbooks/{op.get('op')}.yml again).")
    if len(state["primaries"]) > 1:
        return next(p for p in state["problems"] if "split brain" in p) + (
            f" Then put the primary alone in the {master_group} group.")
    running_fenced = [h for h in state["primaries"] if h in state["fenced"]]
    if running_fenced:
        return next(p for p in state["problems"] if "fenced former primary" in p)
    if state["mode"] == "auto":
        # Patroni places the primary: any member may lead.
        return ""
    master = state["inventory_primary"]
    if state["stale_inventory"]:
        return (f"The inventory is out of date: {state['primary']} is the primary now (after a switchover or "
                f"failover) but the {master_group} group holds {master}. Move {state['primary']} to {master_group} "
                f"and {master} to {replica_group}, then run again.")
    if master in state["fenced"]:
        return (f"{master} is a fenced former primary: it must not run the master role. Bring it back with "
                f"playbooks/rejoin.yml -e host={master} and put the current primary in the {master_group} group.")
    return ""


class FilterModule:
    def filters(self):
        return {"supabase_cluster_state": supabase_cluster_state,
                "supabase_inventory_problem": supabase_inventory_problem}
