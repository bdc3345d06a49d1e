# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Which of the files and directories a role wants on a host differ from what
the host has, judged from one ansible.builtin.find of the host, so that a run
that changes nothing reads the host once instead of once per file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# Documentation: stale_files.yml beside this file.


def _mode(value):
    if value is None:
        return None
    try:
        return int(str(value), 8)
    except ValueError:
        raise AnsibleFilterError(f"stale_files: mode {value!r} is not an octal mode such as '0644'")


def _same_id(wanted, name, number):
    """True when an owner or group given by name or number is the one the host reports."""
    if wanted is None or wanted == "":
        return True
    return str(wanted) in (str(name), str(number))


def stale_files(wanted, found):
    """The entries of wanted (each with a path or dest, and optionally checksum, mode, owner,
    group) that the host's find result `found` lacks or holds otherwise."""
    if not isinstance(wanted, list) or not isinstance(found, list):
        raise AnsibleFilterError("stale_files: give a list of wanted entries and the files list of a find result")
    have = {}
    for entry in found:
        if isinstance(entry, dict) and entry.get("path"):
            have[entry["path"].rstrip("/")] = entry
    stale = []
    for item in wanted:
        if not isinstance(item, dict):
            raise AnsibleFilterError(f"stale_files: each wanted entry must be a mapping, got {item!r}")
        path = item.get("dest", item.get("path"))
        if not path:
            raise AnsibleFilterError(f"stale_files: the entry {item!r} has neither dest nor path")
        host = have.get(str(path).rstrip("/"))
        if host is None:
            stale.append(item)
            continue
        if item.get("checksum") and item["checksum"] != host.get("checksum"):
            stale.append(item)
        elif item.get("mode") is not None and _mode(item["mode"]) != _mode(host.get("mode")):
            stale.append(item)
        elif not _same_id(item.get("owner"), host.get("pw_name"), host.get("uid")):
            stale.append(item)
        elif not _same_id(item.get("group"), host.get("gr_name"), host.get("gid")):
            stale.append(item)
    return stale


class FilterModule:
    def filters(self):
        return {"stale_files": stale_files}
