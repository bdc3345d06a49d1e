# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Whether a running container works with older versions of a set of files: it
started before the newest of them changed.  A handler that restarts or
reloads a service asks this first, so that a run which has just started the
service with its new files does not restart it again (whichever role started
it), and a stopped service is not started by a restart."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from ansible.errors import AnsibleFilterError

# Documentation: started_before.yml beside this file.

# Docker's StartedAt: RFC 3339 in UTC with up to nanoseconds, e.g.
# 2026-12-03T12:34:56.123456789Z ("0001-01-01T00:00:00Z" when never started).
_STARTED = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


def _epoch(started):
    m = _STARTED.match(started or "")
    if not m:
        raise AnsibleFilterError(f"started_before: {started!r} is not a container start time (RFC 3339)")
    clock, fraction, offset = m.groups()
    moment = datetime.strptime(clock, "%Y-%m-%dT%H:%M:%S")
    if offset != "Z":
        raise AnsibleFilterError(f"started_before: {started!r} is not in UTC, as the Docker engine reports it")
    return moment.replace(tzinfo=timezone.utc).timestamp() + (int(fraction.ljust(9, "0")) / 1e9 if fraction else 0.0)


def started_before(info, stats, pending=False):
    """True when the container of a docker_container_info result runs and started before the
    newest modification time among the stat results (files that do not exist are left out);
    false when it is not running, does not exist, or its engine did not answer.  With pending
    (check mode: nothing was written), any file given counts as changed now."""
    if not isinstance(info, dict):
        raise AnsibleFilterError("started_before: give the registered result of community.docker.docker_container_info")
    if not isinstance(stats, list):
        raise AnsibleFilterError("started_before: give the list of registered ansible.builtin.stat results (.results)")
    mtimes = []
    for result in stats:
        if not isinstance(result, dict) or "stat" not in result:
            raise AnsibleFilterError(f"started_before: {result!r} is not an ansible.builtin.stat result")
        if result["stat"].get("exists"):
            mtimes.append(float(result["stat"]["mtime"]))
    state = (info.get("container") or {}).get("State") or {}
    if info.get("failed") or not info.get("exists") or not state.get("Running"):
        return False
    if pending:
        return bool(stats)
    return bool(mtimes) and _epoch(state.get("StartedAt")) < max(mtimes)


class FilterModule:
    def filters(self):
        return {"started_before": started_before}
