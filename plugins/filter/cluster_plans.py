# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Decisions of the operations that move the primary, made from what each host
answered (roles/cluster/tasks/discover.yml), so that a playbook only carries
them out and each decision has unit tests over a table of cases."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.supabase.plugins.module_utils.postgres_conn import lsn_to_int

# Documentation: supabase_failover_plan.yml and supabase_switchover_plan.yml beside this file.


def _lsn(value):
    try:
        return lsn_to_int(value or "0/0")
    except ValueError:
        raise AnsibleFilterError(f"supabase_failover_plan: {value!r} is not an LSN")


def supabase_failover_plan(actual, hosts, operation=None, old_primary_fenced=False):
    """Who a failover promotes, who it fences, and why it must refuse, if it must."""
    if not isinstance(actual, dict):
        raise AnsibleFilterError("supabase_failover_plan: the input must map each host to what it answered")
    role = {host: (state or {}).get("role", "down") for host, state in actual.items()}
    candidates = sorted(h for h in actual if role[h] == "standby")
    ranked = sorted(candidates, key=lambda h: (-_lsn(actual[h].get("lsn")), h))
    answering = sorted(h for h in actual if role[h] == "primary")
    # A host whose database does not answer is a former primary only if its data
    # directory is a primary's; a standby whose database is merely down is left alone.
    down_primaries = sorted(h for h in actual if role[h] == "down" and actual[h].get("data") == "primary")
    down_standbys = sorted(h for h in actual if role[h] == "down" and actual[h].get("data") != "primary")
    # A host that does not answer at all cannot be told apart: it may be the lost primary.
    unreachable = sorted(h for h in hosts if h not in actual)
    plan = dict(new_primary=ranked[0] if ranked else "", candidates=candidates,
                old_primaries=sorted(set(answering + down_primaries + unreachable)),
                down_standbys=down_standbys, problem="")
    operation = operation or {}
    if operation.get("op") == "switchover":
        plan["problem"] = (f"A switchover from {operation.get('from')} to {operation.get('to')} is half done (since "
                           f"{operation.get('started')}): finish it with switchover.yml -e new_primary="
                           f"{operation.get('to')} rather than failing over.")
    elif answering and not old_primary_fenced:
        plan["problem"] = (f"{', '.join(answering)} still answer(s) as primary: this is not a failover situation. "
                           "Use switchover.yml -e new_primary=HOST for a planned move; if that primary must not be "
                           "used any more, stop or isolate it and run again with -e old_primary_fenced=true.")
    elif not ranked:
        plan["problem"] = ("No reachable standby answers: nothing can be promoted. Bring a replica VM back first "
                           "(or restore from a backup).")
    return plan


def supabase_switchover_plan(actual, new_primary, addresses, operation=None):
    """From which host a switchover moves the primary to new_primary, whether it resumes an
    interrupted one, and why it must refuse, if it must."""
    if not isinstance(actual, dict):
        raise AnsibleFilterError("supabase_switchover_plan: the input must map each host to what it answered")
    operation = operation or {}
    resume = operation.get("op") == "switchover"
    primaries = sorted(h for h, state in actual.items() if (state or {}).get("role") == "primary")
    old = operation.get("from", "") if resume else (primaries[0] if primaries else "")
    plan = dict(old_primary=old, new_primary=new_primary, resume=resume, problem="")

    def refuse(text):
        plan["problem"] = text
        return plan

    if operation.get("op") not in (None, "", "switchover"):
        return refuse(f"A {operation['op']} of {operation.get('from')} to {operation.get('to')} is half done: finish "
                      f"it first (run {operation['op']}.yml again).")
    if resume and operation.get("to") != new_primary:
        return refuse(f"A switchover from {operation.get('from')} to {operation.get('to')} is half done: run "
                      f"switchover.yml again with -e new_primary={operation.get('to')} to finish it.")
    if len(primaries) > 1:
        timelines = ", ".join(str(actual[h].get("timeline")) for h in primaries)
        return refuse(f"{' and '.join(primaries)} all answer as primary (timelines {timelines}): split brain. Stop "
                      "the stack on the one that must not take writes (the lower timeline is the older history) "
                      "and bring it back with rejoin.yml -e host=HOST before any switchover.")
    if resume:
        return plan
    if not primaries:
        return refuse("No database host answers as a primary: a switchover needs a running primary. If the primary "
                      "is lost, use failover.yml.")
    if new_primary == old:
        return refuse(f"{new_primary} is already the primary: name the standby to promote.")
    target = actual.get(new_primary) or {}
    if target.get("role") != "standby":
        return refuse(f"{new_primary} is not a standby (it is {target.get('role', 'unreachable')}): only a "
                      "streaming standby can be promoted.")
    if target.get("upstream") != addresses.get(old):
        return refuse(f"{new_primary} does not stream from {old} (its upstream: {target.get('upstream') or 'none'}): "
                      "repair it (site.yml --tags replica) first.")
    lagging = sorted(h for h, state in actual.items()
                     if h != old and ((state or {}).get("role") != "standby"
                                      or state.get("upstream") != addresses.get(old)))
    if lagging:
        return refuse(f"Every replica must stream from {old} before a switchover; {', '.join(lagging)} do(es) not. "
                      "Check with playbooks/status.yml.")
    return plan


class FilterModule:
    def filters(self):
        return {"supabase_failover_plan": supabase_failover_plan,
                "supabase_switchover_plan": supabase_switchover_plan}
