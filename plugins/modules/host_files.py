#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""The documentation of the action plugin plugins/action/host_files.py, which does the work."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_files
short_description: Put a role's directories and rendered files on a host with one read of the host
version_added: 0.2.0
description:
  - Renders every file on the controller (templates are found as M(ansible.builtin.template) finds them,
    the calling role's C(templates/) first, then those of the roles that included it), reads what every
    destination holds with one M(ansible.builtin.find), and writes only what differs (content, mode,
    owner or group) through M(ansible.builtin.copy), with its validation.
  - A run with nothing to change costs one round trip to the host, whatever the number of files.
  - Directories are created (or their mode and owner set) before the files.
  - Notify the role's own handlers from the task (C(notify)) or from RV(written).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
author:
  - selfhost.supabase contributors (!UNKNOWN)
attributes:
  check_mode:
    support: full
    details: Reports what would be written; changes nothing on the host.
  diff_mode:
    support: full
    details: Shows the difference of each file written, except of files marked O(files[].secret).
  platform:
    platforms: posix
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
options:
  dirs:
    description: Directories to create first.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory.
        type: path
        required: true
      owner:
        description: Owner (name or number).
        type: raw
        default: root
      group:
        description: Group (name or number).
        type: raw
        default: root
      mode:
        description: Mode, as an octal string such as C('0755').
        type: raw
        default: "0644"
  files:
    description: Files to put in place, each from exactly one of O(files[].template), O(files[].src) or O(files[].content).
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Path on the host; each destination once.
        type: path
        required: true
      template:
        description: A template rendered on the controller with the task's variables and O(files[].vars).
        type: path
      src:
        description: A file on the controller (a certificate), copied as it is.
        type: path
      content:
        description: The text itself (a key read from another host), copied as it is.
        type: str
      vars:
        description: Variables for this file's template only.
        type: dict
        default: {}
      validate:
        description: A command that checks the new file before it replaces the old one (V(%s) is its path).
        type: str
      secret:
        description: The file holds a key or a password; no diff of it is shown.
        type: bool
        default: false
      owner:
        description: Owner (name or number).
        type: raw
        default: root
      group:
        description: Group (name or number).
        type: raw
        default: root
      mode:
        description: Mode, as an octal string such as C('0600').
        type: raw
        default: "0644"
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Put HAProxy's configuration in place
  selfhost.supabase.host_files:
    files:
      - dest: /etc/haproxy/haproxy.cfg
        template: haproxy.cfg.j2
        validate: haproxy -c -f %s
  register: haproxy_files
  notify: Reload haproxy

- name: Put etcd's data directory and settings in place
  selfhost.supabase.host_files:
    dirs:
      - {path: /var/lib/etcd/selfhost, owner: etcd, group: etcd, mode: "0700"}
    files:
      - {dest: /etc/default/etcd, template: etcd.env.j2}
"""

RETURN = r"""
written:
  description: The files written (in check mode, that would be written).
  returned: always
  type: list
  elements: str
  sample: [/etc/haproxy/haproxy.cfg]
dirs:
  description: The directories created or corrected (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [/var/lib/etcd/selfhost]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible_collections.selfhost.supabase.plugins.module_utils.host_files_spec import ARGUMENT_SPEC

# Files larger than this get no diff.
DIFF_LIMIT = 256 * 1024


def set_attributes(module, path, entry, changed):
    """The entry's mode, owner and group on path (in check mode: whether they would change)."""
    changed = module.set_mode_if_different(path, str(entry["mode"]), changed)
    changed = module.set_owner_if_different(path, str(entry["owner"]), changed)
    return module.set_group_if_different(path, str(entry["group"]), changed)


def make_dir(module, entry, result):
    path = entry["path"]
    changed = False
    if not os.path.isdir(path):
        if os.path.lexists(path):
            module.fail_json(msg=f"{path} exists and is not a directory: move it away, then run again.", **result)
        changed = True
        if not module.check_mode:
            os.makedirs(path)
    return set_attributes(module, path, entry, changed) if os.path.isdir(path) else changed


def write_file(module, entry, result):
    """Write one file whole (through a temporary file beside it, validated first), then
    its mode and owner; returns whether anything changed, and a diff where allowed."""
    dest = entry["dest"]
    data = to_bytes(entry["content"], errors="surrogate_or_strict")
    before = None
    if os.path.isfile(dest):
        with open(dest, "rb") as f:
            before = f.read()
    elif os.path.lexists(dest):
        module.fail_json(msg=f"{dest} exists and is not a file: move it away, then run again.", **result)
    diff = None
    if module._diff and not entry["secret"] and before != data and len(before or b"") <= DIFF_LIMIT:
        diff = dict(before_header=dest, after_header=dest, before=to_text(before or b""), after=to_text(data))
    if before == data:
        changed = False
    else:
        changed = True
        if not module.check_mode:
            directory = os.path.dirname(dest) or "/"
            if not os.path.isdir(directory):
                module.fail_json(msg=f"the directory of {dest} does not exist: list it in dirs.", **result)
            fd, tmp = tempfile.mkstemp(prefix=".host_files.", dir=directory)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                set_attributes(module, tmp, entry, False)
                if entry["validate"]:
                    if "%s" not in entry["validate"]:
                        module.fail_json(msg=f"validate for {dest} must hold %s (the new file's path).", **result)
                    rc, out, err = module.run_command(entry["validate"] % tmp)
                    if rc != 0:
                        module.fail_json(msg=f"{dest} not written: its check ({entry['validate']}) failed: "
                                             f"{(err or out).strip()[-1000:]}", rc=rc, **result)
                module.atomic_move(tmp, dest, keep_dest_attrs=False)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    if os.path.exists(dest):
        changed = set_attributes(module, dest, entry, changed)
    return changed, diff


def main():
    # The files' text is in the arguments: never logged on the host.
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, no_log=True)
    result = dict(changed=False, dirs=[], written=[])
    diffs = []
    for entry in module.params["files"]:
        if entry["content"] is None:
            module.fail_json(msg="selfhost.supabase.host_files renders templates and reads src files on the "
                                 "controller: run it as a task (its action plugin), not as a module on the host.")
    for entry in module.params["dirs"]:
        if make_dir(module, entry, result):
            result["changed"] = True
            result["dirs"].append(entry["path"])
    for entry in module.params["files"]:
        changed, diff = write_file(module, entry, result)
        if changed:
            result["changed"] = True
            result["written"].append(entry["dest"])
        if diff:
            diffs.append(diff)
    module.exit_json(diff=diffs, **result)


if __name__ == "__main__":
    main()
