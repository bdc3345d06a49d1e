"""The failover's decisions (filter supabase_failover_plan) over a table of cluster states."""

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.filter.cluster_plans import (  # noqa: E402
    supabase_failover_plan, supabase_switchover_plan)

HOSTS = ["vm1", "vm2", "vm3"]


def standby(lsn):
    return {"role": "standby", "lsn": lsn, "data": "standby"}


PRIMARY = {"role": "primary", "lsn": "0/9000000", "data": "primary"}
DOWN_PRIMARY = {"role": "down", "lsn": None, "data": "primary"}
DOWN_STANDBY = {"role": "down", "lsn": None, "data": "standby"}


@pytest.mark.parametrize("actual, new, old, down, problem", [
    # The primary VM is gone: the standby that received the most WAL wins, even past a 32-bit boundary.
    ({"vm2": standby("0/FF000000"), "vm3": standby("1/00000010")}, "vm3", ["vm1"], [], ""),
    # Equal LSNs: the first by name, every run the same.
    ({"vm2": standby("0/5000000"), "vm3": standby("0/5000000")}, "vm2", ["vm1"], [], ""),
    # The primary VM answers but its database crashed: fence it, promote a standby.
    ({"vm1": DOWN_PRIMARY, "vm2": standby("0/5000000"), "vm3": standby("0/4000000")}, "vm2", ["vm1"], [], ""),
    # A replica whose database is merely down is neither promoted nor fenced.
    ({"vm2": standby("0/5000000"), "vm3": DOWN_STANDBY}, "vm2", ["vm1"], ["vm3"], ""),
    # The primary still answers: not a failover.
    ({"vm1": PRIMARY, "vm2": standby("0/5000000")}, "vm2", ["vm1", "vm3"], [], "vm1 still answer(s) as primary"),
    # Nothing to promote.
    ({"vm2": DOWN_STANDBY}, "", ["vm1", "vm3"], ["vm2"], "No reachable standby answers"),
])
def test_the_plan_for_each_cluster_state(actual, new, old, down, problem):
    plan = supabase_failover_plan(actual, HOSTS)
    assert plan["new_primary"] == new
    assert plan["old_primaries"] == old and plan["down_standbys"] == down
    assert (problem in plan["problem"]) if problem else plan["problem"] == ""


def test_a_fenced_old_primary_lets_the_failover_go_on():
    plan = supabase_failover_plan({"vm1": PRIMARY, "vm2": standby("0/5000000")}, HOSTS[:2], {}, True)
    assert plan["problem"] == "" and plan["new_primary"] == "vm2" and plan["old_primaries"] == ["vm1"]


def test_a_half_done_switchover_is_finished_not_failed_over():
    journal = {"op": "switchover", "from": "vm1", "to": "vm2", "started": "2026-11-27T10:00:00"}
    plan = supabase_failover_plan({"vm2": standby("0/5000000")}, HOSTS, journal)
    assert "finish it with switchover.yml -e new_primary=vm2" in plan["problem"]


def test_a_malformed_lsn_is_an_error_not_a_guess():
    with pytest.raises(AnsibleFilterError, match="is not an LSN"):
        supabase_failover_plan({"vm2": standby("not-an-lsn")}, HOSTS)


ADDRESSES = {"vm1": "10.0.0.11", "vm2": "10.0.0.12", "vm3": "10.0.0.13"}


def follower(of="vm1", timeline=1):
    return {"role": "standby", "timeline": timeline, "upstream": ADDRESSES[of]}


HEALTHY = {"vm1": {"role": "primary", "timeline": 1, "upstream": None}, "vm2": follower(), "vm3": follower()}


@pytest.mark.parametrize("actual, target, operation, old, problem", [
    (HEALTHY, "vm2", {}, "vm1", ""),
    (HEALTHY, "vm1", {}, "vm1", "vm1 is already the primary"),
    (dict(HEALTHY, vm3={"role": "down"}), "vm2", {}, "vm1", "vm3 do(es) not"),
    (dict(HEALTHY, vm2={"role": "standby", "timeline": 1, "upstream": None}), "vm2", {}, "vm1",
     "vm2 does not stream from vm1 (its upstream: none)"),
    (dict(HEALTHY, vm2={"role": "down"}), "vm2", {}, "vm1", "vm2 is not a standby (it is down)"),
    (dict(HEALTHY, vm3={"role": "primary", "timeline": 2}), "vm2", {}, "vm1",
     "vm1 and vm3 all answer as primary (timelines 1, 2): split brain"),
    ({h: follower() for h in ADDRESSES}, "vm2", {}, "", "No database host answers as a primary"),
    # An interrupted switchover: the old primary is down, the journal says where it was going.
    ({"vm1": {"role": "down"}, "vm2": follower(), "vm3": follower()}, "vm2",
     {"op": "switchover", "from": "vm1", "to": "vm2"}, "vm1", ""),
    (HEALTHY, "vm3", {"op": "switchover", "from": "vm1", "to": "vm2"}, "vm1",
     "run switchover.yml again with -e new_primary=vm2"),
    (HEALTHY, "vm2", {"op": "failover", "from": "vm1", "to": "vm3"}, "vm1", "A failover of vm1 to vm3 is half done"),
])
def test_the_switchover_plan_for_each_cluster_state(actual, target, operation, old, problem):
    plan = supabase_switchover_plan(actual, target, ADDRESSES, operation)
    assert plan["old_primary"] == old
    assert (problem in plan["problem"]) if problem else plan["problem"] == "", plan["problem"]
    assert plan["resume"] == (operation.get("op") == "switchover")
