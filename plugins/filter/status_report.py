# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""playbooks/status.yml's report: what counts as a problem, whether the cluster is
healthy, the notes, and the auto-mode and backup sections, decided from what each
database host read, so that the playbook only shows and writes the answer and each
decision has unit tests over a table of cases.  The primary is not decided again:
it is supabase_cluster_state's (the discovery every playbook runs).

Documentation: supabase_status_report.yml beside this file."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# What a standby runs when its inventory does not say (the replica role's
# replica_services_started): the rest of its compose stack waits, stopped.
STANDBY_SERVICES = ("db", "monitor", "vector")
# Patroni's member states of a member that works.
WORKING = ("running", "streaming")
# The longest database error quoted in a problem (longer ones are cut at a word).
MSG_LENGTH = 200
BACKUP_KEYS = ("host", "stanza", "info_error", "repos", "info", "archiver", "queue", "now", "max_age_hours")
PATRONI_KEYS = ("answered", "members", "etcd")
# Patroni's roles of a standby that confirms each commit before it is acknowledged.
SYNC_ROLES = ("sync_standby", "synchronous_standby", "quorum_standby")


def _fail(text):
    raise AnsibleFilterError(f"supabase_status_report: {text}")


def _hosts(value, what):
    if value is None:
        return []
    if isinstance(value, (str, Mapping)) or not all(isinstance(h, str) for h in value):
        _fail(f"{what} must be a list of host names")
    return list(value)


def _mapping(value, what):
    """A mapping read from a host, {} when the host did not set it; anything else is a bug upstream."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        _fail(f"{what} must be a mapping, got {type(value).__name__}")
    return value


def _int(value):
    """A number the way Jinja's int filter reads it (the report's wording came from the
    templates): '42.5' is 42, what is no number is 0, so a field pgBackRest leaves out
    does not stop the report."""
    try:
        return int(value, 10) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return 0


def _unique(items):
    """Each item once, in order; strings compared without case (as Ansible's unique filter does)."""
    seen, out = set(), []
    for item in items:
        key = item.lower() if isinstance(item, str) else item
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _cut(text, length=MSG_LENGTH, leeway=5, end="..."):
    """A database's error quoted in one line: cut at a word past length (5 characters of grace)."""
    text = str(text)
    if len(text) <= length + leeway:
        return text
    return text[: length - len(end)].rsplit(" ", 1)[0] + end


def _lines(containers, host):
    lines = containers.get("stdout_lines") or []
    if isinstance(lines, str) or not all(isinstance(line, str) for line in lines):
        _fail(f"{host}'s cluster_status_containers.stdout_lines must be a list of docker ps lines")
    return list(lines)


def _host_report(host, facts, primary, master, problems):
    """One host's line of the report; appends what is wrong with it to problems."""
    replication = _mapping(facts.get("cluster_status_replication"), f"{host}'s cluster_status_replication")
    containers = facts.get("cluster_status_containers")
    read = _mapping(containers, f"{host}'s cluster_status_containers")
    lines = _lines(read, host)
    if host != primary:
        # A standby runs only its own services; the rest of the stack waits, stopped,
        # and must not read as a fault.
        own = _hosts(facts.get("replica_services_started", list(STANDBY_SERVICES)),
                     f"{host}'s replica_services_started")
        pattern = re.compile("\t(" + "|".join(re.escape(s) for s in own) + ")$")
        lines = [line for line in lines if pattern.search(line)]
    running = [line for line in lines if "\trunning\t" in line]
    # Stopped, restarting, exited ... and running but failing its health check.
    bad = [line for line in lines if "\trunning\t" not in line] + [line for line in lines if "(unhealthy)" in line]
    if "role" not in replication:
        problems.append(f"{host}: database does not answer ({_cut(replication.get('msg', 'host unreachable'))})")
    else:
        problems.extend(f"{host}: {p}" for p in replication.get("problems", []) or [])
    if containers is None or read.get("failed", False):
        problems.append(f"{host}: cannot list containers")
    elif bad:
        names = _unique(re.sub("\t.*$", "", line) for line in bad)
        problems.append(f"{host}: containers not healthy: {', '.join(names)}")
    return {"host": host, "expected_role": "primary" if host == primary else "standby",
            "inventory_role": "primary" if host in master else "standby",
            "role": replication.get("role"), "timeline": replication.get("timeline"),
            "current_lsn": replication.get("current_lsn"), "standby": replication.get("standby"),
            "standbys": replication.get("standbys", []), "slots": replication.get("slots", []),
            "containers_running": len(running), "containers_total": len(lines),
            "containers_healthy": len(lines) - len(_unique(bad))}


def _patroni_problems(patroni, hosts):
    """Auto mode: what Patroni and the consensus store say is wrong."""
    found = []
    members = patroni["members"] or []
    if not patroni["answered"]:
        found.append("no Patroni member answers")
    else:
        if len([m for m in members if m.get("role") == "leader"]) != 1:
            found.append("Patroni has no leader")
        for host in hosts:
            member = next((m for m in members if m.get("name") == host), None)
            if member is None:
                found.append(f"{host} is not a Patroni member")
            elif member.get("state") not in WORKING:
                found.append(f"{host} is {member.get('state')} under Patroni")
            elif member.get("pending_restart", False):
                found.append(f"{host} waits for a restart (patronictl restart)")
    found.extend(f"etcd member {host} is not healthy" for host, ok in (patroni["etcd"] or {}).items() if not ok)
    if patroni.get("synchronous") and len(hosts) > 1 and patroni["answered"] \
            and not [m for m in members if m.get("role") in SYNC_ROLES]:
        found.append("no synchronous standby: RPO is no longer 0 (commits go on without a replica's "
                     "confirmation until one streams again)")
    return found


def _rpo(patroni):
    """Auto mode's recovery point: 0 while a synchronous standby confirms each commit."""
    sync = [m.get("name") for m in patroni["members"] or [] if m.get("role") in SYNC_ROLES]
    if patroni.get("synchronous") is None:
        return {"synchronous": None, "standbys": [], "zero": None}
    return {"synchronous": bool(patroni["synchronous"]), "standbys": sync,
            "zero": bool(patroni["synchronous"]) and bool(sync)}


def _field(backup, *path):
    """A field of one backup in pgBackRest's answer (info --output=json), which has them all."""
    value = backup
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            _fail(f"backup {backup.get('label', '?')} in pgBackRest's answer lacks {'.'.join(path)}")
        value = value[key]
    return value


def _backup_section(b):
    """The backups' part of the report, from the backup_status the backup role set on the primary."""
    problems, repos = [], []
    now = _int(b["now"])
    info = _mapping(b["info"], "backup_status.info")
    archiver = _mapping(b["archiver"], "backup_status.archiver")
    queue = _mapping(b["queue"], "backup_status.queue")
    if b["info_error"]:
        problems.append(f"pgBackRest does not answer on {b['host']}: {b['info_error']}")
    for key in b["repos"]:
        repo = next((r for r in info.get("repo", []) or [] if r.get("key") == key), {})
        backups = [x for x in info.get("backup", []) or [] if (x.get("database") or {}).get("repo-key") == key]
        last = {}
        for kind in ("full", "diff", "incr"):
            of_kind = [x for x in backups if x.get("type") == kind]
            if of_kind:
                last[kind] = {"label": of_kind[-1].get("label"),
                              "age_seconds": now - _int(_field(of_kind[-1], "timestamp", "stop"))}
        newest = max(_int(_field(x, "timestamp", "stop")) for x in backups) if backups else None
        status = repo.get("status", {})
        status = status if isinstance(status, Mapping) else {}
        entry = {"repo": key, "status": status.get("message", "unknown"), "status_code": status.get("code", 99),
                 "backups": len(backups),
                 "size_bytes": sum(_int(_field(x, "info", "repository", "delta")) for x in backups),
                 "last": last, "newest_age_seconds": (now - newest) if newest is not None else None}
        repos.append(entry)
        # Code 2 (no backup, or the stanza missing) of an empty repository is the
        # first backup not taken yet, said below with what to run.
        if entry["status_code"] != 0 and not (entry["status_code"] == 2 and not backups):
            problems.append(f"backup repository repo{key}: {entry['status']}")
        elif not backups:
            problems.append(f"repo{key} holds no backup yet: run playbooks/backup.yml")
        elif entry["newest_age_seconds"] > _int(b["max_age_hours"]) * 3600:
            problems.append(f"the newest backup in repo{key} is {round(entry['newest_age_seconds'] / 3600, 1)} h old "
                            f"(more than {b['max_age_hours']} h): are the timers running?")
    if archiver.get("failing", False):
        problems.append(f"WAL archiving fails on {b['host']} since {archiver.get('last_failed_wal')} "
                        f"({archiver.get('failed_count')} failures; {queue.get('count', '?')} segments wait in "
                        "pg_wal): is every repository reachable?")
    return {"stanza": b["stanza"], "host": b["host"], "repos": repos,
            "archive": {"queue_segments": queue.get("count"), "oldest_unarchived_age_seconds": queue.get("oldest_age"),
                        "last_archived_wal": archiver.get("last_archived_wal"),
                        "last_archived_age_seconds": archiver.get("last_archived_age"),
                        "failed_count": archiver.get("failed_count"),
                        "last_failed_wal": archiver.get("last_failed_wal"),
                        "failing": archiver.get("failing", False)},
            "problems": problems}


def _required(value, keys, what):
    value = _mapping(value, what)
    missing = [k for k in keys if k not in value]
    if missing:
        _fail(f"{what} lacks {', '.join(missing)}")
    return value


def supabase_status_report(hosts_read, cluster_state, settings):
    """status.yml's report from what each database host read (hosts_read: each host mapped
    to its facts, hostvars will do), the discovery's cluster_state and the inventory's
    groups (settings: master, replica): one document with every problem found, healthy
    only when there is none."""
    if not isinstance(hosts_read, Mapping):
        _fail("the input must map each database host to the facts it set (hostvars)")
    state = _required(cluster_state, ("reference", "primaries", "stale_inventory"), "cluster_state")
    settings = _mapping(settings, "settings")
    master = _hosts(settings.get("master"), "settings.master")
    replica = _hosts(settings.get("replica"), "settings.replica")
    if not master:
        _fail("settings.master names no host (the inventory's master group is empty)")
    hosts = master + [h for h in replica if h not in master]

    def facts(host):
        return _mapping(hosts_read.get(host), f"the facts of {host}")

    def timeline(host):
        # What the discovery read (cluster_actual), as cluster_state's primaries were told from it.
        return _mapping(facts(host).get("cluster_actual"), f"{host}'s cluster_actual").get("timeline")

    primary = state["reference"]
    primaries = _hosts(state["primaries"], "cluster_state.primaries")
    problems, notes = [], []
    if len(primaries) > 1:
        named = " and ".join(f"{h} (timeline {timeline(h)})" for h in primaries)
        problems.append(f"{named} all answer as primary: split brain. The lower timeline is the older history: "
                        "stop the stack there and bring it back with rejoin.yml -e host=HOST")
    elif state["stale_inventory"]:
        notes.append(f"{primary} is the primary, the inventory names {', '.join(master)}: move {primary} to the "
                     "master group (and the former master to replica) before the next site.yml run")
    lines = [_host_report(h, facts(h), primary, master, problems) for h in hosts]
    report = {"healthy": not problems, "problems": problems, "notes": notes, "primary": primary, "hosts": lines}

    # Auto mode: Patroni's view (asked once, kept on every member) and the consensus store's health.
    if "patroni_status" in facts(master[0]):
        patroni = _required(facts(master[0])["patroni_status"], PATRONI_KEYS, "patroni_status")
        found = _patroni_problems(patroni, hosts)
        report.update(mode="auto", patroni=patroni, rpo=_rpo(patroni), healthy=report["healthy"] and not found,
                      problems=problems + found)
        if patroni.get("synchronous") is False:
            notes.append("replication is asynchronous (cluster_synchronous_mode false): a failover may lose what "
                         "the old primary acknowledged and had not yet sent")

    # Backups: asked on the primary only; the first database host that holds an answer.
    asked = next((facts(h)["backup_status"] for h in hosts if "backup_status" in facts(h)), None)
    if asked is not None:
        backup = _backup_section(_required(asked, BACKUP_KEYS, "backup_status"))
        report.update(backup=backup, healthy=report["healthy"] and not backup["problems"],
                      problems=report["problems"] + backup["problems"])
    return report


class FilterModule:
    def filters(self):
        return {"supabase_status_report": supabase_status_report}
