# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Decisions of the operations that bring one host back or take one away
(rejoin.yml, remove_replica.yml), made from the one discovery's answer
(supabase_cluster_state) so that a playbook only carries them out and each
refusal has unit tests over a table of cases.

Neither decides which host is the primary: they read cluster_state's primary
(and, on split brain, its newest_primary) and only check that it can serve the
operation (it answers as a primary, it is not the host being worked on).

Documentation: supabase_rejoin_plan.yml and supabase_remove_replica_plan.yml beside this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

STATE_KEYS = ("primary", "primaries", "newest_primary", "unreachable", "fenced", "operation", "problems")


def _state(name, state):
    if not isinstance(state, dict) or any(key not in state for key in STATE_KEYS):
        raise AnsibleFilterError(f"{name}: the input must be supabase_cluster_state's answer")
    return state


def _names(name, value, what):
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(h, str) for h in value):
        raise AnsibleFilterError(f"{name}: {what} must be a list of host names")
    return list(value)


def _actual(name, value):
    if not isinstance(value, dict) or not all(isinstance(a, dict) for a in value.values()):
        raise AnsibleFilterError(f"{name}: actual must map each host that answered to its cluster_actual")
    return value


def _timeline(actual, host):
    return (actual.get(host) or {}).get("timeline", "?")


def _listed(hosts):
    """'vm1', 'vm1 and vm2', 'vm1, vm2 and vm3'."""
    return " and ".join(hosts) if len(hosts) < 3 else f"{', '.join(hosts[:-1])} and {hosts[-1]}"


def _other_problems(state):
    # The half-done operation is refused on its own; the rest say why no primary is named.
    return [p for p in state["problems"] if " is half done " not in p]


def supabase_rejoin_plan(state, host, hosts, actual):
    """To which host rejoin.yml brings host back as a standby, or why it must refuse.

    The host to rejoin to is the cluster's primary when it answers as one; on split
    brain, the primary on the newest timeline, unless that is host itself (or a fenced
    host) - then it is not clear which history is current.  A fenced host is a former
    primary (a failover's, or a rejoin's own interrupted run): rejoin is how it comes
    back, so it is never the current primary here, even while its database still
    answers as one."""
    name = "supabase_rejoin_plan"
    state = _state(name, state)
    hosts = _names(name, hosts, "hosts")
    actual = _actual(name, actual)
    plan = dict(primary="", problem="")

    def refuse(text):
        plan["problem"] = text
        return plan

    if not isinstance(host, str) or host not in hosts:
        return refuse(f"Give the host to bring back: -e host=HOST, one of {', '.join(hosts)}.")
    operation = state["operation"] or {}
    if operation:
        return refuse(f"A {operation.get('op')} to {operation.get('to')} is half done: run {operation.get('op')}.yml "
                      "again to finish it first.")
    if host in state["unreachable"]:
        return refuse(f"{host} does not answer: start its VM (it must be reachable over SSH), then run this again.")
    primaries = list(state["primaries"])
    fenced = state["fenced"]
    if primaries == [host] and host not in fenced:
        return refuse(f"{host} is the current primary: rejoin a former one.")
    others = [h for h in primaries if h != host]

    target = ""
    if state["primary"] and state["primary"] != host and state["primary"] in primaries:
        target = state["primary"]
    elif len(primaries) > 1 and state["newest_primary"] not in ("", host) and state["newest_primary"] not in fenced:
        target = state["newest_primary"]
    if target:
        plan["primary"] = target
        return plan

    if len(primaries) > 1:
        names = [host] + others if host in primaries else primaries
        return refuse(f"{_listed(names)} {'both' if len(names) == 2 else 'all'} answer as primary on timelines "
                      f"{_listed([str(_timeline(actual, h)) for h in names])}: it is not clear which one is current. "
                      "Stop the stack on the one that must not take writes, then run this again.")
    if not others:
        return refuse("No other host answers as a primary: there is nothing to rejoin to.")
    # One other host answers as a primary, but discovery does not take it for the current one
    # (a fenced host answering, or Patroni naming another leader): its problems say what to do.
    return refuse(f"{others[0]} answers as a primary but is not the cluster's current primary: "
                  f"{' '.join(_other_problems(state))}")


def supabase_remove_replica_plan(state, replica, replicas, actual, data_dir=""):
    """Which replica remove_replica.yml retires and from which primary it drops its slot,
    or why it must refuse (changing nothing).

    Only a host of the replica group that answers, is no primary and holds no primary's
    data is retired; and only while the cluster's primary answers, since its slot must be
    dropped there before anything on the replica is deleted.  data_dir only names the data
    directory in a refusal."""
    name = "supabase_remove_replica_plan"
    state = _state(name, state)
    replicas = _names(name, replicas, "replicas")
    actual = _actual(name, actual)
    plan = dict(replica="", primary="", problem="")

    def refuse(text):
        plan["problem"] = text
        return plan

    if not isinstance(replica, str) or replica not in replicas:
        return refuse("Say which replica to retire with -e replica=HOST, HOST being one of the replica group: "
                      f"{', '.join(replicas) or '(none)'}."
                      + (f' "{replica}" is not in it.' if replica is not None else ""))
    operation = state["operation"] or {}
    if operation:
        return refuse(f"A {operation.get('op')} to {operation.get('to')} is half done (since "
                      f"{operation.get('started')}): finish it first (run playbooks/{operation.get('op')}.yml "
                      f"again). Nothing was changed.")
    if replica in state["unreachable"] or replica not in actual:
        return refuse(f"{replica} does not answer: nothing was changed. Start its VM (it must be reachable over "
                      "SSH), then run this again.")
    answer = actual[replica]
    if replica in state["primaries"] or answer.get("role") == "primary" or answer.get("data") == "primary":
        return refuse(f"{replica} answers as a PRIMARY or holds a primary's data directory (no standby.signal in "
                      f"{data_dir or 'its data directory'}): the inventory is out of date (after a failover?). "
                      "Nothing was changed. Fix the inventory's master group first.")
    primaries = list(state["primaries"])
    if len(primaries) > 1:
        why = f"{' and '.join(primaries)} all answer as primary"
    elif not primaries:
        why = "No database host answers as the primary"
    elif state["primary"] != primaries[0]:
        why = (f"{primaries[0]} answers as a primary but is not the cluster's current primary "
               f"({' '.join(_other_problems(state))})")
    else:
        plan.update(replica=replica, primary=primaries[0])
        return plan
    return refuse(f"{why}: the slot of {replica} could not be dropped, so nothing was changed. Run "
                  "playbooks/status.yml, bring the primary back, and run this again.")


class FilterModule:
    def filters(self):
        return {"supabase_rejoin_plan": supabase_rejoin_plan,
                "supabase_remove_replica_plan": supabase_remove_replica_plan}
