"""status.yml's report (filter supabase_status_report) over a table of what the hosts read:
healthy or not and the exact problems and notes (tests/lab/test_status.py, test_auto.py,
test_backup.py and test_failover.py look for these words)."""

import copy
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.filter.cluster_state import supabase_cluster_state  # noqa: E402
from ansible_collections.selfhost.supabase.plugins.filter.status_report import supabase_status_report  # noqa: E402

ADDRESSES = {"vm1": "10.0.0.11", "vm2": "10.0.0.12", "vm3": "10.0.0.13"}
NOW = 1796205600  # 2026-12-02 10:00 UTC


# ------------------------------------------------------------ what a host reads

def ps(*rows):
    """cluster_status_containers: docker ps's registered result, 'name\\tstate\\tstatus\\tservice' lines."""
    lines = ["\t".join(row) for row in rows]
    return {"changed": False, "rc": 0, "failed": False, "stdout": "\n".join(lines), "stdout_lines": lines}


def up(service, status="Up 2 hours (healthy)"):
    return (f"supabase-{service}", "running", status, service)


def stopped(service, state="exited", status="Exited (0) 2 hours ago"):
    return (f"supabase-{service}", state, status, service)


PRIMARY_STACK = ps(up("db"), up("auth"), up("rest", "Up 2 hours"), up("kong"), up("vector"), up("monitor"))
# A standby runs db, vector and monitor; the rest of the stack was created and waits, stopped.
STANDBY_STACK = ps(up("db"), up("vector"), up("monitor"), stopped("auth"), stopped("kong", "created", "Created"),
                   stopped("rest"))


def slot(name, active=True, retained=0):
    return {"name": name, "type": "physical", "active": active, "wal_status": "reserved", "retained_bytes": retained}


def sender(name, lag_bytes=0, lag_seconds=0.002):
    return {"application_name": name, "client_addr": ADDRESSES[name], "state": "streaming", "sync_state": "async",
            "write_lag_bytes": 0, "flush_lag_bytes": 0, "replay_lag_bytes": lag_bytes,
            "write_lag_seconds": 0.001, "flush_lag_seconds": 0.001, "replay_lag_seconds": lag_seconds}


def primary_read(standbys=("vm2",), problems=(), timeline=1, slots=None):
    """pg_replication_info's registered result on a primary."""
    return {"changed": False, "failed": False, "healthy": not problems, "problems": list(problems), "role": "primary",
            "timeline": timeline, "current_lsn": "0/3000148",
            "slots": [slot(s) for s in standbys] if slots is None else slots,
            "standbys": [sender(s) if isinstance(s, str) else s for s in standbys], "waited_seconds": 0.0}


def standby_read(name, upstream="vm1", problems=(), timeline=1, gap=0, delay=0.0, receiver="streaming"):
    return {"changed": False, "failed": False, "healthy": not problems, "problems": list(problems), "role": "standby",
            "timeline": timeline, "current_lsn": "0/3000148", "slots": [], "standbys": [],
            "standby": {"receive_lsn": "0/3000148", "replay_lsn": "0/3000148", "receiver_status": receiver,
                        "sender_host": ADDRESSES[upstream] if receiver else None, "sender_port": 5433,
                        "slot_name": name, "replay_delay_seconds": delay, "receive_replay_gap_bytes": gap},
            "waited_seconds": 0.0}


REFUSED = ('cannot open database \'postgres\' on 10.0.0.12:5433 as supabase_admin: connection to server at '
           '"10.0.0.12", port 5433 failed: Connection refused. Is the server running on that host and accepting '
           'TCP/IP connections? (the database on 10.0.0.12:5433 does not run, or a firewall drops the port: '
           'docker ps on that host, then docker logs supabase-db)')
DOWN_READ = {"failed": True, "changed": False, "msg": REFUSED}


def actual(role, timeline=1, upstream=None, patroni=False):
    """cluster_actual: what the discovery read (roles/cluster/tasks/discover.yml)."""
    return {"reachable": True, "role": role, "timeline": timeline, "lsn": "0/3000148" if role != "down" else None,
            "upstream": ADDRESSES[upstream] if upstream else None, "fenced": False,
            "data": "standby" if role == "standby" else "primary", "patroni": patroni, "journal": {}}


def cluster(hosts, master=("vm1",), replica=("vm2",), leader=""):
    """Every host's facts as status.yml's plays leave them, with the discovery's
    cluster_state (one answer, kept on every host) from supabase_cluster_state."""
    answered = {h: f["cluster_actual"] for h, f in hosts.items() if "cluster_actual" in f}
    state = supabase_cluster_state(answered, list(master), list(replica), leader)
    return {h: dict(f, cluster_state=state) for h, f in hosts.items()}


def healthy_pair(**over):
    hosts = {"vm1": {"cluster_actual": actual("primary"), "cluster_status_replication": primary_read(),
                     "cluster_status_containers": PRIMARY_STACK},
             "vm2": {"cluster_actual": actual("standby", upstream="vm1"),
                     "cluster_status_replication": standby_read("vm2"), "cluster_status_containers": STANDBY_STACK}}
    for host, facts in over.items():
        hosts[host] = dict(hosts[host], **facts)
    return hosts


# ------------------------------------------------------------------- auto mode

def member(name, role="replica", state="streaming", timeline=1, lag=0, **kw):
    out = {"name": name, "role": role, "state": state, "api_url": f"http://{ADDRESSES[name]}:8008/patroni",
           "host": ADDRESSES[name], "port": 5433, "timeline": timeline}
    if role != "leader":
        out["lag"] = lag
    return dict(out, **kw)


def patroni(members, etcd=None, answered=True, synchronous=None):
    out = {"answered": answered, "members": members if answered else [],
           "etcd": {"vm1": True, "vm2": True, "vm3": True} if etcd is None else etcd}
    if synchronous is not None:
        out["synchronous"] = synchronous
    return out


def auto(status, **over):
    hosts = healthy_pair(**over)
    for h in hosts:
        hosts[h]["cluster_actual"] = dict(hosts[h]["cluster_actual"], patroni=True)
        hosts[h]["patroni_status"] = status
    return hosts


AUTO_OK = patroni([member("vm1", "leader", "running"), member("vm2")])
AUTO_SYNC = patroni([member("vm1", "leader", "running"), member("vm2", "sync_standby")], synchronous=True)
NO_SYNC_STANDBY = ("no synchronous standby: RPO is no longer 0 (commits go on without a replica's confirmation "
                   "until one streams again)")
ASYNC_NOTE = ("replication is asynchronous (cluster_synchronous_mode false): a failover may lose what the old "
              "primary acknowledged and had not yet sent")


# --------------------------------------------------------------------- backups

def backup(label, kind, stop, repo=1, delta=50_000_000):
    return {"label": label, "type": kind, "timestamp": {"start": stop - 60, "stop": stop},
            "info": {"size": delta * 3, "delta": delta, "repository": {"size": delta // 3, "delta": delta // 3}},
            "database": {"id": 1, "repo-key": repo}, "prior": None, "reference": None}


def repo(key, code=0, message="ok"):
    return {"key": key, "cipher": "none", "status": {"code": code, "message": message}}


ARCHIVER_OK = {"archived_count": 42, "last_archived_wal": "000000010000000000000029", "last_archived_age": 12.5,
               "failed_count": 0, "last_failed_wal": None, "last_failed_age": None, "failing": False}
ARCHIVER_FAILING = dict(ARCHIVER_OK, failed_count=7, last_failed_wal="00000001000000000000002A", last_failed_age=3.1,
                        failing=True)


def backup_status(backups, repos=None, keys=(1, 2), archiver=None, queue=None, info_error="", max_age_hours=26):
    """backup_status as roles/backup/tasks/status.yml sets it on the primary."""
    info = {} if info_error else {"name": "supabase", "status": {"code": 0, "message": "ok"},
                                  "repo": repos or [repo(k) for k in keys], "backup": backups}
    return {"host": "vm1", "stanza": "supabase", "info_error": info_error, "repos": list(keys), "info": info,
            "archiver": ARCHIVER_OK if archiver is None else archiver,
            "queue": {"count": 0, "oldest_age": None} if queue is None else queue,
            "now": NOW, "max_age_hours": max_age_hours}


FRESH_BACKUPS = [backup("20261201-020000F", "full", NOW - 32 * 3600, 1),
                 backup("20261201-020000F", "full", NOW - 32 * 3600, 2),
                 backup("20261202-020000F_20261202-030000D", "diff", NOW - 7 * 3600, 1),
                 backup("20261202-020000F_20261202-090000I", "incr", NOW - 3600, 1),
                 backup("20261202-020000F_20261202-090000I", "incr", NOW - 3600 + 5, 2)]


def with_backup(status, host="vm1", **over):
    hosts = healthy_pair(**over)
    hosts[host] = dict(hosts[host], backup_status=status)
    return hosts


# ---------------------------------------------------------------- the table

SPLIT = ("vm1 (timeline 1) and vm2 (timeline 2) all answer as primary: split brain. The lower timeline is the "
         "older history: stop the stack there and bring it back with rejoin.yml -e host=HOST")
STALE = ("vm2 is the primary, the inventory names vm1: move vm2 to the master group (and the former master to "
         "replica) before the next site.yml run")
SLOT_GONE = ("slot vm3 does not exist: its standby cannot resume after a disconnect (site.yml --tags replica creates "
             "it again)")
THREE = ("vm1",), ("vm2", "vm3")

# name, hosts' facts, (master, replica), healthy, problems, notes
CASES = [
    ("healthy 1+1: the standby's stopped stack does not count",
     cluster(healthy_pair()), None, True, [], []),
    ("a replica's database stopped (tests/lab/test_status.py)",
     cluster(healthy_pair(
         vm1={"cluster_status_replication": primary_read(standbys=[], slots=[slot("vm2", False, 16777216)], problems=[
             "standby vm2 is not connected", "slot vm2 is not active (wal_status reserved, 16777216 bytes retained)"])},
         vm2={"cluster_actual": actual("down"), "cluster_status_replication": DOWN_READ,
              "cluster_status_containers": ps(stopped("db", status="Exited (0) 5 seconds ago"), up("vector"),
                                              up("monitor"), stopped("auth"))})),
     None, False,
     ["vm1: standby vm2 is not connected",
      "vm1: slot vm2 is not active (wal_status reserved, 16777216 bytes retained)",
      "vm2: database does not answer (cannot open database 'postgres' on 10.0.0.12:5433 as supabase_admin: connection "
      "to server at \"10.0.0.12\", port 5433 failed: Connection refused. Is the server running on that host and "
      "accepting...)",
      "vm2: containers not healthy: supabase-db"], []),
    ("a host that does not answer at all: nothing registered",
     cluster(healthy_pair() | {"vm2": {}}), None, False,
     ["vm2: database does not answer (host unreachable)", "vm2: cannot list containers"], []),
    ("lag over the thresholds, on the primary and on the standby",
     cluster(healthy_pair(
         vm1={"cluster_status_replication": primary_read(standbys=[sender("vm2", 99_000_000, 41.5)], problems=[
             "standby vm2 lags 99000000 bytes (max 67108864)", "standby vm2 lags 41.500 s (max 30.0)"])},
         vm2={"cluster_status_replication": standby_read("vm2", gap=70_000_000, delay=41.5, problems=[
             "replay is 70000000 bytes behind what was received (max 67108864)",
             "replay is 41.500 s behind (max 30.0)"])})),
     None, False,
     ["vm1: standby vm2 lags 99000000 bytes (max 67108864)", "vm1: standby vm2 lags 41.500 s (max 30.0)",
      "vm2: replay is 70000000 bytes behind what was received (max 67108864)",
      "vm2: replay is 41.500 s behind (max 30.0)"], []),
    ("containers unhealthy on the primary: failing its check, restarting, listed once each",
     cluster(healthy_pair(vm1={"cluster_status_containers": ps(
         up("db"), up("auth", "Up 3 minutes (unhealthy)"), ("supabase-kong", "restarting",
                                                           "Restarting (1) 4 seconds ago (unhealthy)", "kong"),
         stopped("rest"), up("vector"))})),
     None, False, ["vm1: containers not healthy: supabase-kong, supabase-rest, supabase-auth"], []),
    ("a standby's own service down counts; its waiting stack does not",
     cluster(healthy_pair(vm2={"cluster_status_containers": ps(
         up("db"), stopped("vector", "restarting", "Restarting (1) 2 seconds ago"), up("monitor"), stopped("auth"),
         stopped("studio"))})),
     None, False, ["vm2: containers not healthy: supabase-vector"], []),
    ("a standby that runs only db and monitor (replica_services_started): vector stopped is no fault",
     cluster(healthy_pair(vm2={"replica_services_started": ["db", "monitor"], "cluster_status_containers": ps(
         up("db"), up("monitor"), stopped("vector"), stopped("auth"))})),
     None, True, [], []),
    ("docker ps failed",
     cluster(healthy_pair(vm2={"cluster_status_containers": {"failed": True, "rc": 1, "stdout": "", "stdout_lines": [],
                                                             "msg": "non-zero return code"}})),
     None, False, ["vm2: cannot list containers"], []),
    ("split brain: both answer as primary",
     cluster(healthy_pair(
         vm1={"cluster_status_replication": primary_read(standbys=[], slots=[slot("vm2", False)],
                                                         problems=["standby vm2 is not connected"])},
         vm2={"cluster_actual": actual("primary", timeline=2),
              "cluster_status_replication": primary_read(standbys=[], slots=[], timeline=2, problems=[
                  "the server is a primary, expected a standby"]),
              "cluster_status_containers": PRIMARY_STACK})),
     None, False,
     [SPLIT, "vm1: standby vm2 is not connected", "vm2: the server is a primary, expected a standby"], []),
    ("after a switchover to vm2 the inventory is stale: healthy, with a note (tests/lab/test_failover.py)",
     cluster({"vm1": {"cluster_actual": actual("standby", timeline=2, upstream="vm2"),
                      "cluster_status_replication": standby_read("vm1", upstream="vm2", timeline=2),
                      "cluster_status_containers": STANDBY_STACK},
              "vm2": {"cluster_actual": actual("primary", timeline=2),
                      "cluster_status_replication": primary_read(standbys=["vm1"], timeline=2),
                      "cluster_status_containers": PRIMARY_STACK}}),
     None, True, [], [STALE]),
    ("three hosts: a dropped slot (tests/lab/test_failover.py)",
     cluster({"vm1": {"cluster_actual": actual("primary"), "cluster_status_containers": PRIMARY_STACK,
                      "cluster_status_replication": primary_read(standbys=["vm2", "vm3"], slots=[slot("vm2")],
                                                                 problems=[SLOT_GONE])},
              "vm2": {"cluster_actual": actual("standby", upstream="vm1"), "cluster_status_containers": STANDBY_STACK,
                      "cluster_status_replication": standby_read("vm2")},
              "vm3": {"cluster_actual": actual("standby", upstream="vm1"), "cluster_status_containers": STANDBY_STACK,
                      "cluster_status_replication": standby_read("vm3")}}, *THREE),
     THREE, False, [f"vm1: {SLOT_GONE}"], []),
    ("auto mode, healthy", cluster(auto(AUTO_OK), leader="vm1"), None, True, [], []),
    ("auto mode: a member not running, one waiting for a restart, one not a member, etcd members unhealthy",
     cluster({**auto(patroni([member("vm1", "leader", "running", pending_restart=True), member("vm2", state="stopped")],
                             etcd={"vm1": True, "vm2": False, "vm3": False})),
              "vm3": {"cluster_actual": actual("standby", upstream="vm1", patroni=True), "cluster_status_containers":
                      STANDBY_STACK, "cluster_status_replication": standby_read("vm3")}}, *THREE, leader="vm1"),
     THREE, False,
     ["vm1 waits for a restart (patronictl restart)", "vm2 is stopped under Patroni", "vm3 is not a Patroni member",
      "etcd member vm2 is not healthy", "etcd member vm3 is not healthy"], []),
    ("auto mode, synchronous, vm2 the synchronous standby", cluster(auto(AUTO_SYNC), leader="vm1"), None, True, [], []),
    ("auto mode, synchronous, the replica streams but is not synchronous yet (tests/lab/test_auto.py)",
     cluster(auto(patroni([member("vm1", "leader", "running"), member("vm2")], synchronous=True)), leader="vm1"),
     None, False, [NO_SYNC_STANDBY], []),
    ("auto mode, asynchronous: a note", cluster(auto(patroni([member("vm1", "leader", "running"), member("vm2")],
                                                             synchronous=False)), leader="vm1"),
     None, True, [], [ASYNC_NOTE]),
    ("auto mode: no leader (a member starting)",
     cluster(auto(patroni([member("vm1", state="starting"), member("vm2")]))), None, False,
     ["Patroni has no leader", "vm1 is starting under Patroni"], []),
    ("auto mode: no member answers, the witness's etcd is gone (tests/lab/test_auto.py)",
     cluster(auto(patroni([], etcd={"vm1": True, "vm2": True, "vm3": False}, answered=False))), None, False,
     ["no Patroni member answers", "etcd member vm3 is not healthy"], []),
    ("backups fresh in both repositories", cluster(with_backup(backup_status(FRESH_BACKUPS))), None, True, [], []),
    ("backup too old (tests/lab/test_backup.py runs with max age 0)",
     cluster(with_backup(backup_status(FRESH_BACKUPS, max_age_hours="0"))), None, False,
     ["the newest backup in repo1 is 1.0 h old (more than 0 h): are the timers running?",
      "the newest backup in repo2 is 1.0 h old (more than 0 h): are the timers running?"], []),
    ("backup older than a day",
     cluster(with_backup(backup_status([backup("20261129-020000F", "full", NOW - 80 * 3600 - 600)], keys=(1,)))),
     None, False, ["the newest backup in repo1 is 80.2 h old (more than 26 h): are the timers running?"], []),
    ("no backup yet: the empty repository's code 2 is not a fault of its own",
     cluster(with_backup(backup_status([], repos=[repo(1, 2, "no valid backups")], keys=(1,)))), None, False,
     ["repo1 holds no backup yet: run playbooks/backup.yml"], []),
    ("the repository host down: archiving fails, its repository errs (tests/lab/test_backup.py)",
     cluster(with_backup(backup_status(FRESH_BACKUPS, repos=[repo(1, 99, "other"), repo(2)],
                                       archiver=ARCHIVER_FAILING, queue={"count": 3, "oldest_age": 41}))),
     None, False,
     ["backup repository repo1: other",
      "WAL archiving fails on vm1 since 00000001000000000000002A (7 failures; 3 segments wait in pg_wal): is every "
      "repository reachable?"], []),
    ("pgBackRest does not answer, the queue unread",
     cluster(with_backup(backup_status([], info_error="ERROR: [056]: unable to find primary cluster",
                                       archiver=ARCHIVER_FAILING, queue={}))),
     None, False,
     ["pgBackRest does not answer on vm1: ERROR: [056]: unable to find primary cluster",
      "backup repository repo1: unknown", "backup repository repo2: unknown",
      "WAL archiving fails on vm1 since 00000001000000000000002A (7 failures; ? segments wait in pg_wal): is every "
      "repository reachable?"], []),
    ("a standby's problems and the backups' add up, in order",
     cluster(with_backup(backup_status([], repos=[repo(1, 2, "no valid backups")], keys=(1,)),
                         vm2={"cluster_status_replication": standby_read("vm2", receiver=None, problems=[
                             "the WAL receiver is not running, not streaming"])})),
     None, False,
     ["vm2: the WAL receiver is not running, not streaming", "repo1 holds no backup yet: run playbooks/backup.yml"],
     []),
]


def report_of(hosts, groups=None):
    master, replica = groups or (("vm1",), ("vm2",))
    first = master[0]
    return supabase_status_report(hosts, hosts[first]["cluster_state"] if first in hosts else None,
                                  {"master": list(master), "replica": list(replica)})


@pytest.mark.parametrize("name, hosts, groups, healthy, problems, notes", CASES, ids=[c[0] for c in CASES])
def test_the_report_of_each_cluster_state(name, hosts, groups, healthy, problems, notes):
    report = report_of(copy.deepcopy(hosts), groups)
    assert report["problems"] == problems
    assert report["healthy"] is healthy
    assert report["notes"] == notes


def test_each_host_s_line():
    report = report_of(cluster(healthy_pair()))
    assert report["primary"] == "vm1" and "mode" not in report and "patroni" not in report and "backup" not in report
    vm1, vm2 = report["hosts"]
    assert vm1 == {"host": "vm1", "expected_role": "primary", "inventory_role": "primary", "role": "primary",
                   "timeline": 1, "current_lsn": "0/3000148", "standby": None, "standbys": [sender("vm2")],
                   "slots": [slot("vm2")], "containers_running": 6, "containers_total": 6, "containers_healthy": 6}
    # The standby's stopped stack is not counted at all.
    assert (vm2["expected_role"], vm2["role"], vm2["standby"]["receiver_status"]) == ("standby", "standby", "streaming")
    assert (vm2["containers_running"], vm2["containers_total"], vm2["containers_healthy"]) == (3, 3, 3)


def test_a_host_that_read_nothing_has_an_empty_line():
    line = report_of(cluster(healthy_pair()) | {"vm2": {}})["hosts"][1]
    assert line == {"host": "vm2", "expected_role": "standby", "inventory_role": "standby", "role": None,
                    "timeline": None, "current_lsn": None, "standby": None, "standbys": [], "slots": [],
                    "containers_running": 0, "containers_total": 0, "containers_healthy": 0}


def test_after_a_switchover_the_new_primary_is_checked_as_the_primary():
    hosts = next(c[1] for c in CASES if c[0].startswith("after a switchover"))
    report = report_of(hosts)
    assert report["primary"] == "vm2"
    roles = {h["host"]: (h["expected_role"], h["inventory_role"]) for h in report["hosts"]}
    assert roles == {"vm1": ("standby", "primary"), "vm2": ("primary", "standby")}


def test_unhealthy_containers_are_counted_once():
    hosts = next(c[1] for c in CASES if c[0].startswith("containers unhealthy"))
    line = report_of(hosts)["hosts"][0]
    # db, auth (unhealthy), vector running; kong restarting and unhealthy, rest exited.
    assert (line["containers_running"], line["containers_total"], line["containers_healthy"]) == (3, 5, 2)


def test_auto_mode_adds_patroni_s_view():
    report = report_of(cluster(auto(AUTO_OK), leader="vm1"))
    assert report["mode"] == "auto" and report["patroni"] == AUTO_OK


@pytest.mark.parametrize("status, rpo", [
    (AUTO_SYNC, {"synchronous": True, "standbys": ["vm2"], "zero": True}),
    (patroni([member("vm1", "leader", "running"), member("vm2")], synchronous=True),
     {"synchronous": True, "standbys": [], "zero": False}),
    (patroni([member("vm1", "leader", "running"), member("vm2")], synchronous=False),
     {"synchronous": False, "standbys": [], "zero": False}),
    (AUTO_OK, {"synchronous": None, "standbys": [], "zero": None}),
], ids=["synchronous standby", "no synchronous standby", "asynchronous", "settings not read"])
def test_the_report_says_whether_rpo_is_0(status, rpo):
    assert report_of(cluster(auto(status), leader="vm1"))["rpo"] == rpo


def test_the_backup_section():
    section = report_of(cluster(with_backup(backup_status(FRESH_BACKUPS))))["backup"]
    assert (section["stanza"], section["host"], section["problems"]) == ("supabase", "vm1", [])
    one, two = section["repos"]
    assert one == {"repo": 1, "status": "ok", "status_code": 0, "backups": 3, "size_bytes": 3 * 16666666,
                   "last": {"full": {"label": "20261201-020000F", "age_seconds": 32 * 3600},
                            "diff": {"label": "20261202-020000F_20261202-030000D", "age_seconds": 7 * 3600},
                            "incr": {"label": "20261202-020000F_20261202-090000I", "age_seconds": 3600}},
                   "newest_age_seconds": 3600}
    assert (two["backups"], sorted(two["last"]), two["newest_age_seconds"]) == (2, ["full", "incr"], 3595)
    assert section["archive"] == {"queue_segments": 0, "oldest_unarchived_age_seconds": None,
                                  "last_archived_wal": "000000010000000000000029", "last_archived_age_seconds": 12.5,
                                  "failed_count": 0, "last_failed_wal": None, "failing": False}


def test_the_backup_section_comes_from_whichever_host_was_asked():
    report = report_of(cluster(with_backup(backup_status([], keys=(1,)), host="vm2")))
    assert report["backup"]["repos"][0]["newest_age_seconds"] is None
    assert report["problems"] == ["repo1 holds no backup yet: run playbooks/backup.yml"]


def test_a_long_database_error_is_cut_at_a_word():
    hosts = cluster(healthy_pair(vm2={"cluster_status_replication": {"failed": True, "msg": "word " * 50}}))
    problem = report_of(hosts)["problems"][0]
    assert problem == "vm2: database does not answer (" + "word " * 38 + "word...)"
    hosts = cluster(healthy_pair(vm2={"cluster_status_replication": {"failed": True, "msg": "x" * 205}}))
    assert report_of(hosts)["problems"][0] == f"vm2: database does not answer ({'x' * 205})"  # within the grace


@pytest.mark.parametrize("hosts, state, settings, words", [
    ([], {}, {"master": ["vm1"]}, "must map each database host"),
    ({}, {"reference": "vm1"}, {"master": ["vm1"]}, "cluster_state lacks primaries, stale_inventory"),
    ({}, None, {"master": ["vm1"]}, "cluster_state lacks reference"),
    ({}, {"reference": "vm1", "primaries": ["vm1"], "stale_inventory": False}, {"master": []}, "names no host"),
    ({}, {"reference": "vm1", "primaries": ["vm1"], "stale_inventory": False}, {"master": "vm1"}, "list of host names"),
    ({"vm1": "primary"}, {"reference": "vm1", "primaries": ["vm1"], "stale_inventory": False}, {"master": ["vm1"]},
     "the facts of vm1 must be a mapping"),
    ({"vm1": {"cluster_status_containers": {"stdout_lines": "db running"}}},
     {"reference": "vm1", "primaries": ["vm1"], "stale_inventory": False}, {"master": ["vm1"]},
     "stdout_lines must be a list"),
    ({"vm1": {"patroni_status": {"answered": True}}},
     {"reference": "vm1", "primaries": ["vm1"], "stale_inventory": False}, {"master": ["vm1"]},
     "patroni_status lacks members, etcd"),
    ({"vm1": {"backup_status": {"host": "vm1"}}},
     {"reference": "vm1", "primaries": ["vm1"], "stale_inventory": False}, {"master": ["vm1"]},
     "backup_status lacks stanza"),
    ({"vm1": {"backup_status": backup_status([{"label": "20261201-020000F", "type": "full",
                                               "database": {"repo-key": 1}}])}},
     {"reference": "vm1", "primaries": ["vm1"], "stale_inventory": False}, {"master": ["vm1"]},
     "backup 20261201-020000F in pgBackRest's answer lacks timestamp.stop"),
])
def test_bad_input_is_an_error_not_a_report(hosts, state, settings, words):
    with pytest.raises(AnsibleFilterError, match=words):
        supabase_status_report(hosts, state, settings)
