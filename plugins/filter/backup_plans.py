# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""The decisions of playbooks/restore.yml, made before anything changes: is the
request well formed, where does it restore, which pgbackrest restore options
carry it out, and (given what `pgbackrest info` says of the repository) can
the repository reach that target.  Unit-tested over a table of cases."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ansible.errors import AnsibleFilterError

# Documentation: supabase_restore_plan.yml beside this file.

_TIME = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*$")
_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
_POINT = re.compile(r"^[A-Za-z0-9_.:-]{1,63}$")
_LABEL = re.compile(r"^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$")


def parse_time(text):
    """'YYYY-MM-DD HH:MM:SS[.f][offset]' (no offset: UTC) -> aware datetime, or None."""
    m = _TIME.match(text or "")
    if not m:
        return None
    day, clock, fraction, offset = m.groups()
    try:
        moment = datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    if fraction:
        moment += timedelta(microseconds=round(float(fraction) * 1e6))
    delta = timedelta(0)
    if offset and offset != "Z":
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 14 or minutes > 59:
            return None
        delta = timedelta(hours=hours, minutes=minutes) * (-1 if offset[0] == "-" else 1)
    return moment.replace(tzinfo=timezone(delta)).astimezone(timezone.utc)


def _lsn_int(text):
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def _utc(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")


def _request_problem(req, ctx, moment, now):
    targets = [k for k in ("time", "lsn", "point") if req.get(k)]
    host, confirm = req.get("host") or "", req.get("confirm") or ""
    repo = str(req.get("repo") or "")
    repos = [str(r) for r in ctx.get("repos", [])]
    stanza = ctx.get("stanza", "")
    if not ctx.get("enabled"):
        return "this inventory names no backup repository (a host in the repository group, or backup_s3)."
    if len(targets) > 1:
        return "name one target: restore_time, restore_lsn or restore_point (none: the latest archived point)."
    if req.get("time") and moment is None:
        return (f"restore_time '{req['time']}': write YYYY-MM-DD HH:MM:SS with an optional offset "
                "(+00, +01:00, Z; none means UTC).")
    if moment is not None and moment.timestamp() > now:
        return (f"restore_time '{req['time']}' is in the future (now is {_utc(now)}): "
                "there is nothing to recover to yet.")
    if req.get("lsn") and not _LSN.match(req["lsn"]):
        return f"restore_lsn '{req['lsn']}': write it as PostgreSQL shows it (0/5000028)."
    if req.get("point") and not _POINT.match(req["point"]):
        return f"restore_point '{req['point']}': the name given to pg_create_restore_point()."
    if repo not in repos:
        return f"repo={repo}: this cluster's repositories are {', '.join(repos)}."
    if req.get("set") and not _LABEL.match(req["set"]):
        return f"set '{req['set']}' is not a backup label (status.yml and pgbackrest info show them)."
    if host and confirm:
        return "give restore_host (a copy on a separate host) or confirm (the cluster in place), not both."
    if host:
        if host not in ctx.get("inventory_hosts", []):
            return f"restore_host {host} is not a host of this inventory."
        if host in ctx.get("db_hosts", []):
            return (f"restore_host {host} is a database host of this cluster: a copy for inspection goes to a "
                    "separate host (the repository host, or another host with Docker).")
        repo_hosts = ctx.get("repo_hosts", [])
        if repo == "1" and repo_hosts and host not in repo_hosts:
            return (f"a copy from repo1 (the repository host) is made on the repository host itself "
                    f"({repo_hosts[0]}); for another host name the S3 repository (repo={ctx.get('s3_repo')}).")
        return ""
    if confirm != stanza:
        said = f"confirm={confirm} does not name this cluster. " if confirm else ""
        return (f"{said}A restore in place stops the stack, replaces the primary's data (kept beside it) and "
                f"rebuilds every replica: add -e confirm={stanza} (the stanza) to go ahead, or "
                "-e restore_host=HOST for a copy on a separate host.")
    if ctx.get("mode") == "auto":
        return ("a restore in place is not done under Patroni (auto mode) yet: restore a copy with "
                "-e restore_host=HOST, or switch the cluster to cluster_mode manual first.")
    return ""


def _range_problem(req, repo, info, moment):
    """What the repository (pgbackrest info, one stanza) says against the target."""
    key = int(repo)
    status = next((r.get("status", {}) for r in info.get("repo", []) if r.get("key") == key), None)
    if status is None:
        return f"pgbackrest info says nothing of repo{key}."
    if status.get("code") not in (0, 2):
        message = status.get("message", "")
        if "FormatError" in message and info.get("cipher", "none") != "none":
            return (f"the passphrase does not decrypt repo{key} (its info files read as garbage): the "
                    "repository was made with another PGBACKREST_CIPHER_PASS. Use the secrets file it was made with.")
        return f"repo{key} cannot be read: {message.splitlines()[0] if message else 'unknown error'}"
    backups = [b for b in info.get("backup", []) if b.get("database", {}).get("repo-key") == key and not b.get("error")]
    if not backups:
        return f"repo{key} holds no backup of stanza {info.get('name', '')}: nothing to restore."
    if req.get("set"):
        chosen = [b for b in backups if b["label"] == req["set"]]
        if not chosen:
            return f"repo{key} has no backup {req['set']} (it has {', '.join(b['label'] for b in backups)})."
        backups = chosen
    oldest = min(backups, key=lambda b: b["timestamp"]["stop"])
    if moment is not None and moment.timestamp() < oldest["timestamp"]["stop"]:
        return (f"restore_time {_utc(moment.timestamp())} is outside the backups' range: the "
                f"{'chosen' if req.get('set') else 'oldest'} backup in repo{key} ({oldest['label']}) ends at "
                f"{_utc(oldest['timestamp']['stop'])}, the earliest point it can restore.")
    if req.get("lsn") and _lsn_int(req["lsn"]) < _lsn_int(oldest["lsn"]["stop"]):
        return (f"restore_lsn {req['lsn']} is outside the backups' range: the "
                f"{'chosen' if req.get('set') else 'oldest'} backup in repo{key} ({oldest['label']}) ends at "
                f"LSN {oldest['lsn']['stop']}.")
    return ""


def supabase_restore_plan(request, context, info=None):
    """Where and to what a restore goes, its pgbackrest options, or why it must be refused."""
    if not isinstance(request, dict) or not isinstance(context, dict):
        raise AnsibleFilterError("supabase_restore_plan: the request and the context must be mappings")
    req = {k: ("" if v is None else str(v).strip()) for k, v in request.items()}
    if not req.get("repo"):
        req["repo"] = str((context.get("repos") or [1])[0])
    now = float(context.get("now") or datetime.now(timezone.utc).timestamp())
    moment = parse_time(req["time"]) if req.get("time") else None
    problem = _request_problem(req, context, moment, now)
    if not problem and info is not None:
        if not isinstance(info, dict):
            raise AnsibleFilterError("supabase_restore_plan: info must be one stanza of pgbackrest info --output=json")
        problem = _range_problem(req, req["repo"], info, moment)
    if moment is not None:
        target = {"type": "time", "value": _utc(moment.timestamp()), "epoch": moment.timestamp()}
    elif req.get("lsn"):
        target = {"type": "lsn", "value": req["lsn"].upper(), "epoch": None}
    elif req.get("point"):
        target = {"type": "name", "value": req["point"], "epoch": None}
    else:
        target = {"type": "latest", "value": "", "epoch": None}
    options = [f"--repo={req['repo']}"]
    if target["type"] != "latest":
        options += [f"--type={target['type']}", f"--target={target['value']}", "--target-action=promote"]
    if req.get("set"):
        options.append(f"--set={req['set']}")
    return {"problem": problem, "mode": "copy" if req.get("host") else "in_place", "repo": int(req["repo"]) if
            req["repo"].isdigit() else req["repo"], "host": req.get("host", ""), "target": target, "options": options}


class FilterModule:
    def filters(self):
        return {"supabase_restore_plan": supabase_restore_plan}
