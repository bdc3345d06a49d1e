"""The decisions of rejoin.yml (filter supabase_rejoin_plan) and remove_replica.yml
(supabase_remove_replica_plan) over a table of cluster states, each state made by the
real discovery (supabase_cluster_state) from what the hosts answered."""

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.filter.cluster_state import (  # noqa: E402
    supabase_cluster_state)
from ansible_collections.selfhost.supabase.plugins.filter.operation_plans import (  # noqa: E402
    supabase_rejoin_plan, supabase_remove_replica_plan)

MASTER, REPLICA = ["vm1"], ["vm2", "vm3"]
HOSTS = MASTER + REPLICA


def host(role, data=None, timeline=1, **kw):
    return dict(role=role, timeline=timeline, data=data or ("none" if role == "down" else role),
                fenced=False, patroni=False, journal={}, **kw)


PRIMARY = host("primary")
STANDBY = host("standby")
DOWN_PRIMARY = host("down", data="primary")
DOWN_STANDBY = host("down", data="standby")
FRESH = host("down")
JOURNAL = {"op": "switchover", "from": "vm1", "to": "vm2", "started": "2026-12-02T10:00:00"}


def primary(timeline, **kw):
    return dict(PRIMARY, timeline=timeline, **kw)


def fenced(answer):
    return dict(answer, fenced=True)


def auto(answer):
    return dict(answer, patroni=True)


def state_of(actual, leader=""):
    return supabase_cluster_state(actual, MASTER, REPLICA, leader)


HEALTHY = {"vm1": PRIMARY, "vm2": STANDBY, "vm3": STANDBY}
# After a failover to vm2: vm1 (the old primary) fenced, its stack stopped.
FAILED_OVER = {"vm1": fenced(DOWN_PRIMARY), "vm2": primary(2), "vm3": dict(STANDBY, timeline=2)}


# ------------------------------------------------------------------ rejoin.yml

# name, what each host answered, Patroni's leader, the host to bring back,
# expected host to rejoin to, a refusal's words ('' for none).
REJOIN = [
    ("after a failover: the fenced old primary comes back to the new one",
     FAILED_OVER, "", "vm1", "vm2", ""),
    ("the old primary's VM came back and its database answers, read-only, as a standby",
     {"vm1": dict(STANDBY), "vm2": primary(2), "vm3": dict(STANDBY, timeline=2)}, "", "vm1", "vm2", ""),
    ("a standby left on an old timeline",
     {"vm1": fenced(DOWN_PRIMARY), "vm2": primary(2), "vm3": STANDBY}, "", "vm3", "vm2", ""),
    ("a host whose database is down",
     {"vm1": DOWN_STANDBY, "vm2": primary(2), "vm3": STANDBY}, "", "vm1", "vm2", ""),
    ("split brain: the host is on the older timeline, the newest one is current",
     {"vm1": primary(1), "vm2": primary(2), "vm3": STANDBY}, "", "vm1", "vm2", ""),
    ("split brain: a standby rejoins the newest timeline's primary",
     {"vm1": primary(1), "vm2": primary(2), "vm3": STANDBY}, "", "vm3", "vm2", ""),
    ("a fenced old primary promoted by hand on the older timeline",
     {"vm1": fenced(primary(1)), "vm2": primary(2), "vm3": STANDBY}, "", "vm1", "vm2", ""),
    ("auto mode: Patroni's leader answers",
     {"vm1": auto(STANDBY), "vm2": auto(primary(2)), "vm3": auto(STANDBY)}, "vm2", "vm1", "vm2", ""),
    ("no host named",
     HEALTHY, "", "", "", "Give the host to bring back: -e host=HOST, one of vm1, vm2, vm3."),
    ("a host not in the play",
     HEALTHY, "", "vm9", "", "Give the host to bring back: -e host=HOST, one of vm1, vm2, vm3."),
    ("a half-done switchover",
     {"vm1": dict(STANDBY, journal=JOURNAL), "vm2": primary(2), "vm3": STANDBY}, "", "vm1", "",
     "A switchover to vm2 is half done: run switchover.yml again to finish it first."),
    ("the host does not answer at all",
     {"vm2": primary(2), "vm3": STANDBY}, "", "vm1", "", "vm1 does not answer: start its VM"),
    ("the host is the current primary",
     HEALTHY, "", "vm1", "", "vm1 is the current primary: rejoin a former one."),
    ("nothing answers as a primary",
     {"vm1": DOWN_PRIMARY, "vm2": STANDBY, "vm3": STANDBY}, "", "vm2", "",
     "No other host answers as a primary: there is nothing to rejoin to."),
    ("a fresh cluster: the inventory's master is named but does not answer as a primary",
     {"vm1": FRESH, "vm2": FRESH, "vm3": FRESH}, "", "vm2", "",
     "No other host answers as a primary: there is nothing to rejoin to."),
    ("the only primary is the fenced host itself: not current, but nothing to rejoin to",
     {"vm1": fenced(PRIMARY), "vm2": STANDBY, "vm3": STANDBY}, "", "vm1", "",
     "No other host answers as a primary: there is nothing to rejoin to."),
    ("split brain: the host is on the newer timeline",
     {"vm1": primary(1), "vm2": primary(2), "vm3": STANDBY}, "", "vm2", "",
     "vm2 and vm1 both answer as primary on timelines 2 and 1: it is not clear which one is current. Stop the "
     "stack on the one that must not take writes, then run this again."),
    ("split brain on one timeline",
     {"vm1": primary(2), "vm2": primary(2), "vm3": STANDBY}, "", "vm1", "",
     "vm1 and vm2 both answer as primary on timelines 2 and 2: it is not clear which one is current."),
    ("split brain on one timeline, a standby to rejoin",
     {"vm1": primary(2), "vm2": primary(2), "vm3": STANDBY}, "", "vm3", "",
     "vm1 and vm2 both answer as primary on timelines 2 and 2"),
    ("three primaries, the newest the host",
     {"vm1": primary(1), "vm2": primary(2), "vm3": primary(3)}, "", "vm3", "",
     "vm3, vm1 and vm2 all answer as primary on timelines 3, 1 and 2"),
    ("split brain whose newest primary is fenced: never rejoined to",
     {"vm1": fenced(primary(3)), "vm2": primary(2), "vm3": STANDBY}, "", "vm3", "",
     "vm1 and vm2 both answer as primary on timelines 3 and 2"),
    ("a fenced host answers as the only primary: another host is not rejoined to it",
     {"vm1": fenced(PRIMARY), "vm2": STANDBY, "vm3": STANDBY}, "", "vm2", "",
     "vm1 answers as a primary but is not the cluster's current primary: vm1 is a fenced former primary but "
     "answers as a primary: stop its stack"),
    ("auto mode: Patroni names another leader than the host answering",
     {"vm1": auto(PRIMARY), "vm2": auto(STANDBY), "vm3": auto(STANDBY)}, "vm2", "vm3", "",
     "vm1 answers as a primary but is not the cluster's current primary: Patroni names vm2 its leader"),
]


@pytest.mark.parametrize("name, actual, leader, target, new_primary, problem", REJOIN, ids=[c[0] for c in REJOIN])
def test_the_rejoin_plan_for_each_cluster_state(name, actual, leader, target, new_primary, problem):
    plan = supabase_rejoin_plan(state_of(actual, leader), target, HOSTS, actual)
    assert plan["primary"] == new_primary
    if problem:
        assert problem in plan["problem"], plan["problem"]
    else:
        assert plan["problem"] == ""


def test_a_refused_rejoin_names_no_primary_to_rejoin_to():
    actual = {"vm1": primary(1), "vm2": primary(2), "vm3": STANDBY}
    assert supabase_rejoin_plan(state_of(actual), "vm2", HOSTS, actual) == dict(primary="", problem=(
        "vm2 and vm1 both answer as primary on timelines 2 and 1: it is not clear which one is current. Stop the "
        "stack on the one that must not take writes, then run this again."))


def test_a_host_that_is_not_a_string_is_not_given():
    plan = supabase_rejoin_plan(state_of(HEALTHY), 2, HOSTS, HEALTHY)
    assert plan["problem"].startswith("Give the host to bring back")


# ---------------------------------------------------------- remove_replica.yml

DATA = "/opt/supabase/volumes/db/data"

# name, what each host answered, Patroni's leader, the replica argument (None: not given),
# expected replica and primary, a refusal's words ('' for none).
REMOVE = [
    ("a healthy cluster: retire vm3, its slot dropped on vm1",
     HEALTHY, "", "vm3", "vm3", "vm1", ""),
    ("after a failover (inventory not yet updated): the slot is dropped on the current primary",
     {"vm1": fenced(DOWN_PRIMARY), "vm2": primary(2), "vm3": dict(STANDBY, timeline=2)}, "", "vm3", "vm3", "vm2",
     ""),
    ("a replica whose database is down",
     {"vm1": PRIMARY, "vm2": STANDBY, "vm3": DOWN_STANDBY}, "", "vm3", "vm3", "vm1", ""),
    ("auto mode: Patroni's leader is the primary",
     {"vm1": auto(STANDBY), "vm2": auto(PRIMARY), "vm3": auto(STANDBY)}, "vm2", "vm3", "vm3", "vm2", ""),
    ("no replica named",
     HEALTHY, "", None, "", "",
     "Say which replica to retire with -e replica=HOST, HOST being one of the replica group: vm2, vm3."),
    ("the master named",
     HEALTHY, "", "vm1", "", "", 'the replica group: vm2, vm3. "vm1" is not in it.'),
    ("a host not in the inventory",
     HEALTHY, "", "vm9", "", "", '"vm9" is not in it.'),
    ("a half-done switchover",
     {"vm1": dict(PRIMARY, journal=JOURNAL), "vm2": STANDBY, "vm3": STANDBY}, "", "vm3", "", "",
     "A switchover to vm2 is half done (since 2026-12-02T10:00:00): finish it first (run "
     "playbooks/switchover.yml again). Nothing was changed."),
    ("the replica does not answer",
     {"vm1": PRIMARY, "vm2": STANDBY}, "", "vm3", "", "", "vm3 does not answer: nothing was changed."),
    ("an inventory out of date: the replica answers as the primary",
     {"vm1": STANDBY, "vm2": primary(2), "vm3": STANDBY}, "", "vm2", "", "",
     f"vm2 answers as a PRIMARY or holds a primary's data directory (no standby.signal in {DATA}): the inventory "
     "is out of date (after a failover?). Nothing was changed. Fix the inventory's master group first."),
    ("a replica holding a primary's data, its database down",
     {"vm1": PRIMARY, "vm2": STANDBY, "vm3": DOWN_PRIMARY}, "", "vm3", "", "",
     "vm3 answers as a PRIMARY or holds a primary's data directory"),
    ("split brain",
     {"vm1": PRIMARY, "vm2": primary(2), "vm3": STANDBY}, "", "vm3", "", "",
     "vm1 and vm2 all answer as primary: the slot of vm3 could not be dropped"),
    ("no primary answers (its database is down)",
     {"vm1": DOWN_PRIMARY, "vm2": STANDBY, "vm3": STANDBY}, "", "vm3", "", "",
     "No database host answers as the primary: the slot of vm3 could not be dropped, so nothing was changed. Run "
     "playbooks/status.yml, bring the primary back, and run this again."),
    ("the primary's VM is gone",
     {"vm2": STANDBY, "vm3": STANDBY}, "", "vm3", "", "", "No database host answers as the primary"),
    ("auto mode: the leader's database does not answer this run",
     {"vm1": auto(STANDBY), "vm2": auto(DOWN_PRIMARY), "vm3": auto(STANDBY)}, "vm2", "vm3", "", "",
     "No database host answers as the primary: the slot of vm3"),
    ("a fenced former primary answers as the only primary",
     {"vm1": fenced(PRIMARY), "vm2": STANDBY, "vm3": STANDBY}, "", "vm3", "", "",
     "vm1 answers as a primary but is not the cluster's current primary (vm1 is a fenced former primary"),
    ("auto mode: Patroni names another leader than the host answering",
     {"vm1": auto(PRIMARY), "vm2": auto(STANDBY), "vm3": auto(STANDBY)}, "vm2", "vm3", "", "",
     "(Patroni names vm2 its leader but vm1 answers as the primary"),
]


@pytest.mark.parametrize("name, actual, leader, replica, retired, slot_on, problem", REMOVE,
                         ids=[c[0] for c in REMOVE])
def test_the_remove_replica_plan_for_each_cluster_state(name, actual, leader, replica, retired, slot_on, problem):
    plan = supabase_remove_replica_plan(state_of(actual, leader), replica, REPLICA, actual, DATA)
    assert (plan["replica"], plan["primary"]) == (retired, slot_on)
    if problem:
        assert problem in plan["problem"], plan["problem"]
    else:
        assert plan["problem"] == ""


def test_two_primaries_leave_the_slot_where_it_is():
    actual = {"vm1": PRIMARY, "vm2": primary(2), "vm3": STANDBY}
    plan = supabase_remove_replica_plan(state_of(actual), "vm3", REPLICA, actual)
    assert plan == dict(replica="", primary="", problem=(
        "vm1 and vm2 all answer as primary: the slot of vm3 could not be dropped, so nothing was changed. Run "
        "playbooks/status.yml, bring the primary back, and run this again."))


def test_an_empty_replica_group_says_so():
    plan = supabase_remove_replica_plan(state_of(HEALTHY), "vm3", [], HEALTHY)
    assert plan["problem"] == ('Say which replica to retire with -e replica=HOST, HOST being one of the replica '
                               'group: (none). "vm3" is not in it.')


def test_without_a_data_dir_the_refusal_still_reads():
    actual = {"vm1": STANDBY, "vm2": primary(2), "vm3": STANDBY}
    plan = supabase_remove_replica_plan(state_of(actual), "vm2", REPLICA, actual)
    assert "(no standby.signal in its data directory)" in plan["problem"]


# ------------------------------------------------------------------ bad input

GOOD_STATE = state_of(HEALTHY)


@pytest.mark.parametrize("plan, args, message", [
    (supabase_rejoin_plan, (None, "vm2", HOSTS, HEALTHY), "must be supabase_cluster_state's answer"),
    (supabase_rejoin_plan, ({"primary": "vm1"}, "vm2", HOSTS, HEALTHY), "must be supabase_cluster_state's answer"),
    (supabase_rejoin_plan, (GOOD_STATE, "vm2", "vm1,vm2", HEALTHY), "hosts must be a list of host names"),
    (supabase_rejoin_plan, (GOOD_STATE, "vm2", [1, 2], HEALTHY), "hosts must be a list of host names"),
    (supabase_rejoin_plan, (GOOD_STATE, "vm2", HOSTS, ["vm1"]), "actual must map each host"),
    (supabase_remove_replica_plan, ("state", "vm3", REPLICA, HEALTHY), "must be supabase_cluster_state's answer"),
    (supabase_remove_replica_plan, (GOOD_STATE, "vm3", None, HEALTHY), "replicas must be a list of host names"),
    (supabase_remove_replica_plan, (GOOD_STATE, "vm3", REPLICA, {"vm3": "standby"}), "actual must map each host"),
])
def test_bad_input_is_an_error_not_a_guess(plan, args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        plan(*args)
