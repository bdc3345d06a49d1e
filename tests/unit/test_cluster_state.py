"""The one discovery (filter supabase_cluster_state) and site.yml's refusal made from it
(supabase_inventory_problem), over a table of cluster states."""

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.filter.cluster_state import (  # noqa: E402
    supabase_cluster_state, supabase_inventory_problem)

MASTER, REPLICA = ["vm1"], ["vm2", "vm3"]


def host(role, data=None, timeline=1, **kw):
    return dict(role=role, timeline=timeline, data=data or ("none" if role == "down" else role),
                fenced=False, patroni=False, journal={}, **kw)


FRESH = host("down")
PRIMARY = host("primary")
STANDBY = host("standby")
DOWN_PRIMARY = host("down", data="primary")
DOWN_STANDBY = host("down", data="standby")
FENCED = dict(DOWN_PRIMARY, fenced=True)
FENCED_RUNNING = dict(PRIMARY, fenced=True)
AUTO_PRIMARY = dict(PRIMARY, patroni=True)
AUTO_STANDBY = dict(STANDBY, patroni=True)
JOURNAL = {"op": "switchover", "from": "vm1", "to": "vm2", "started": "2026-12-02T10:00:00"}


# name, what each host answered, Patroni's leader,
# expected primary, its source, standbys, mode, stale inventory, a problem's words ('' for none).
CASES = [
    ("fresh cluster: nothing deployed, the inventory's master is the primary",
     {"vm1": FRESH, "vm2": FRESH, "vm3": FRESH}, "", "vm1", "inventory", [], "manual", False, ""),
    ("deployed and healthy",
     {"vm1": PRIMARY, "vm2": STANDBY, "vm3": STANDBY}, "", "vm1", "hosts", ["vm2", "vm3"], "manual", False, ""),
    ("after a switchover to vm2, inventory not yet updated",
     {"vm1": dict(STANDBY, timeline=2), "vm2": dict(PRIMARY, timeline=2), "vm3": STANDBY}, "",
     "vm2", "hosts", ["vm1", "vm3"], "manual", True, ""),
    ("after a failover with a stale inventory: vm1 is dead",
     {"vm2": dict(PRIMARY, timeline=2), "vm3": STANDBY}, "", "vm2", "hosts", ["vm3"], "manual", True, ""),
    ("after a failover: the old primary answers but is fenced and stopped",
     {"vm1": FENCED, "vm2": dict(PRIMARY, timeline=2), "vm3": STANDBY}, "", "vm2", "hosts", ["vm3"], "manual", True,
     ""),
    ("two primaries: split brain, no primary named",
     {"vm1": PRIMARY, "vm2": dict(PRIMARY, timeline=2), "vm3": STANDBY}, "", "", "", ["vm3"], "manual", False,
     "split brain"),
    ("no primary answers, its data is on vm1 whose database is stopped",
     {"vm1": DOWN_PRIMARY, "vm2": STANDBY, "vm3": STANDBY}, "", "vm1", "data", ["vm2", "vm3"], "manual", False,
     "No database host answers as a primary"),
    ("no primary answers and the primary's VM is gone",
     {"vm2": STANDBY, "vm3": STANDBY}, "", "", "", ["vm2", "vm3"], "manual", False,
     "vm1 did not answer at all"),
    ("a fenced host answers as a primary",
     {"vm1": FENCED_RUNNING, "vm2": dict(STANDBY), "vm3": STANDBY}, "", "", "", ["vm2", "vm3"], "manual", False,
     "fenced former primary but answers"),
    ("a fenced host never counts as the primary's data",
     {"vm1": FENCED, "vm2": DOWN_STANDBY, "vm3": DOWN_STANDBY}, "", "", "", [], "manual", False,
     "No database host answers"),
    ("auto mode: Patroni and the hosts agree (vm2 leads, any member may)",
     {"vm1": AUTO_STANDBY, "vm2": AUTO_PRIMARY, "vm3": AUTO_STANDBY}, "vm2", "vm2", "hosts", ["vm1", "vm3"], "auto",
     False, ""),
    ("auto mode: Patroni's view disagrees with a host's",
     {"vm1": AUTO_PRIMARY, "vm2": AUTO_STANDBY, "vm3": AUTO_STANDBY}, "vm2", "", "", ["vm2", "vm3"], "auto", False,
     "Patroni names vm2 its leader but vm1 answers"),
    ("auto mode: the leader's database does not answer this run, Patroni decides",
     {"vm1": AUTO_STANDBY, "vm2": dict(DOWN_PRIMARY, patroni=True), "vm3": AUTO_STANDBY}, "vm2", "vm2", "patroni",
     ["vm1", "vm3"], "auto", False, ""),
    ("auto mode: Patroni could not be asked, the hosts decide",
     {"vm1": AUTO_STANDBY, "vm2": AUTO_PRIMARY, "vm3": AUTO_STANDBY}, "", "vm2", "hosts", ["vm1", "vm3"], "auto",
     False, ""),
    ("manual mode ignores a leader name",
     {"vm1": PRIMARY, "vm2": STANDBY, "vm3": STANDBY}, "vm3", "vm1", "hosts", ["vm2", "vm3"], "manual", False, ""),
    ("a half-done switchover",
     {"vm1": dict(STANDBY, journal=JOURNAL), "vm2": STANDBY, "vm3": STANDBY}, "", "", "", ["vm1", "vm2", "vm3"],
     "manual", False, "switchover to vm2 is half done"),
]


@pytest.mark.parametrize("name, actual, leader, primary, source, standbys, mode, stale, problem", CASES,
                         ids=[c[0] for c in CASES])
def test_the_state_of_each_cluster(name, actual, leader, primary, source, standbys, mode, stale, problem):
    state = supabase_cluster_state(actual, MASTER, REPLICA, leader)
    assert (state["primary"], state["source"]) == (primary, source)
    assert state["standbys"] == standbys
    assert state["mode"] == mode
    assert state["stale_inventory"] is stale
    assert state["unreachable"] == [h for h in MASTER + REPLICA if h not in actual]
    # The health checks always have a host to compare with; the followers are all the others.
    assert state["reference"] == (primary or "vm1")
    assert sorted(state["followers"] + [state["reference"]]) == ["vm1", "vm2", "vm3"]
    if problem:
        assert any(problem in p for p in state["problems"]), state["problems"]
    else:
        assert state["problems"] == []


@pytest.mark.parametrize("actual, problem", [
    ({"vm1": FRESH, "vm2": FRESH, "vm3": FRESH}, ""),
    ({"vm1": PRIMARY, "vm2": STANDBY, "vm3": STANDBY}, ""),
    # A primary that is down is started again by site.yml: not a refusal.
    ({"vm1": DOWN_PRIMARY, "vm2": STANDBY, "vm3": STANDBY}, ""),
    ({"vm1": STANDBY, "vm2": dict(PRIMARY, timeline=2), "vm3": STANDBY}, "Move vm2 to master and vm1 to replica"),
    ({"vm1": PRIMARY, "vm2": dict(PRIMARY, timeline=2), "vm3": STANDBY}, "Then put the primary alone in the master"),
    ({"vm1": FENCED, "vm2": DOWN_STANDBY, "vm3": DOWN_STANDBY}, "vm1 is a fenced former primary: it must not"),
    ({"vm1": FENCED_RUNNING, "vm2": STANDBY, "vm3": STANDBY}, "fenced former primary but answers"),
    ({"vm1": dict(STANDBY, journal=JOURNAL), "vm2": STANDBY, "vm3": STANDBY}, "run playbooks/switchover.yml again"),
    # Auto mode: any member may lead.
    ({"vm1": AUTO_STANDBY, "vm2": AUTO_PRIMARY, "vm3": AUTO_STANDBY}, ""),
])
def test_site_refuses_what_the_inventory_does_not_describe(actual, problem):
    got = supabase_inventory_problem(supabase_cluster_state(actual, MASTER, REPLICA, ""), "master", "replica")
    assert (problem in got) if problem else got == ""
    if problem:
        assert got


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(AnsibleFilterError, match="map each host"):
        supabase_cluster_state(["vm1"], MASTER, REPLICA)
    with pytest.raises(AnsibleFilterError, match="no database host"):
        supabase_cluster_state({}, [], [])
    with pytest.raises(AnsibleFilterError, match="vm9 answered but are not database hosts"):
        supabase_cluster_state({"vm9": PRIMARY}, MASTER, REPLICA)
    with pytest.raises(AnsibleFilterError, match="role 'leader'"):
        supabase_cluster_state({"vm1": dict(PRIMARY, role="leader")}, MASTER, REPLICA)
    with pytest.raises(AnsibleFilterError, match="list of host names"):
        supabase_cluster_state({}, "vm1", REPLICA)
    with pytest.raises(AnsibleFilterError, match="supabase_cluster_state's answer"):
        supabase_inventory_problem({})


def test_patroni_leader_outside_the_inventory_is_a_problem():
    state = supabase_cluster_state({"vm1": AUTO_STANDBY, "vm2": AUTO_STANDBY, "vm3": AUTO_STANDBY}, MASTER, REPLICA,
                                   "vm7")
    assert state["primary"] == ""
    assert any("vm7" in p for p in state["problems"])


@pytest.mark.parametrize("actual, newest", [
    ({"vm1": PRIMARY, "vm2": STANDBY, "vm3": STANDBY}, "vm1"),
    # Split brain: the higher timeline is the current history.
    ({"vm1": PRIMARY, "vm2": dict(PRIMARY, timeline=2), "vm3": STANDBY}, "vm2"),
    # Both on the same timeline: which one is current cannot be told.
    ({"vm1": dict(PRIMARY, timeline=2), "vm2": dict(PRIMARY, timeline=2), "vm3": STANDBY}, ""),
    ({"vm2": STANDBY, "vm3": STANDBY}, ""),
])
def test_the_newest_primary_is_the_highest_timeline(actual, newest):
    assert supabase_cluster_state(actual, MASTER, REPLICA)["newest_primary"] == newest
