# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Put a role's directories and files on a host with one read of the host.

The controller renders every file (templates found as the template module finds
them: the calling role's templates/ first, then those of the roles that included
it), one ansible.builtin.find returns what each destination holds (checksum, mode,
owner), and what differs is written by the module of the same name in one more
round trip (each file validated first, then moved into place whole).  A run
with nothing to change costs one round trip to the host, whatever the number of
files.  The caller notifies its
own handlers from what the result says was written."""

from __future__ import annotations

import hashlib
import os
import posixpath

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

try:  # where ansible-core 2.19 and later keep it
    from ansible._internal._templating._template_vars import generate_ansible_template_vars
except ImportError:  # pragma: no cover
    from ansible.template import generate_ansible_template_vars
from ansible_collections.selfhost.supabase.plugins.filter.host_files import stale_files
from ansible_collections.selfhost.supabase.plugins.module_utils.host_files_spec import ARGUMENT_SPEC


def _sha1(data):
    return hashlib.sha1(data).hexdigest()


def _parents(paths):
    """The directories find reads (each path's own directory, not walked)."""
    return sorted({posixpath.dirname(p.rstrip("/")) or "/" for p in paths})


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_diff = True

    def _render(self, entry, task_vars):
        """The bytes the file should hold."""
        if entry["content"] is not None:
            return to_bytes(entry["content"], errors="surrogate_or_strict")
        if entry["src"] is not None:
            try:
                path = self._find_needle("files", entry["src"])
            except AnsibleError as err:
                raise AnsibleActionFail(f"host_files: {entry['dest']}: {to_text(err)}")
            with open(path, "rb") as f:
                return f.read()
        try:
            path = self._find_needle("templates", entry["template"])
        except AnsibleError as err:
            raise AnsibleActionFail(f"host_files: {entry['dest']}: {to_text(err)}")
        searchpath = list(task_vars.get("ansible_search_path", [])) + [self._loader._basedir, os.path.dirname(path)]
        searchpath = [q for p in searchpath for q in (os.path.join(p, "templates"), p)]
        # ansible_managed and the template_* names, as the template module gives them.
        variables = dict(task_vars)
        variables.update(generate_ansible_template_vars(path=entry["template"], fullpath=path, dest_path=entry["dest"],
                                                        include_ansible_managed="ansible_managed" not in task_vars))
        variables.update(entry["vars"])
        templar = self._templar.copy_with_new_env(searchpath=searchpath, available_variables=variables)
        text = templar.template(trust_as_template(self._loader.get_text_file_contents(path)),
                                escape_backslashes=False)
        return to_bytes(text or "", errors="surrogate_or_strict")

    def _module(self, name, args, task_vars):
        result = self._execute_module(module_name=name, module_args=args, task_vars=task_vars)
        # The write's arguments hold the files' text: never handed back.
        result.pop("invocation", None)
        if result.get("failed"):
            detail = " ".join(str(result.get(k, "")) for k in ("msg", "module_stderr")).strip()
            raise AnsibleActionFail(f"host_files: {name} failed on the host: {detail}")
        return result

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        dirs, files = args["dirs"], args["files"]
        dests = [f["dest"] for f in files]
        twice = sorted({d for d in dests if dests.count(d) > 1})
        if twice:
            raise AnsibleActionFail(f"host_files: each destination once; given more than once: {', '.join(twice)}")

        wanted = []
        rendered = {}
        for entry in files:
            rendered[entry["dest"]] = self._render(entry, task_vars)
            wanted.append(dict(dest=entry["dest"], owner=entry["owner"], group=entry["group"], mode=entry["mode"],
                               checksum=_sha1(rendered[entry["dest"]])))
        want_dirs = [dict(path=d["path"].rstrip("/") or "/", owner=d["owner"], group=d["group"], mode=d["mode"])
                     for d in dirs]

        paths = [d["path"] for d in want_dirs] + dests
        found = []
        if paths:
            # One read: every destination's directory, only the names wanted.  A
            # directory not there yet is skipped by find (reported as missing here).
            answer = self._module("ansible.builtin.find", dict(
                paths=_parents(paths), patterns=sorted({posixpath.basename(p) for p in paths}),
                file_type="any", hidden=True, get_checksum=True, recurse=False), task_vars)
            found = [f for f in answer.get("files", []) if f.get("path") in set(paths)]
        stale_dirs = stale_files(want_dirs, found)
        stale = {f["dest"] for f in stale_files(wanted, found)}

        result.update(changed=False, dirs=[], written=[])
        try:
            if stale_dirs or stale:
                # One more round trip writes everything that differs (the module of the same name).
                args = dict(dirs=stale_dirs, files=[dict(
                    dest=e["dest"], content=to_text(rendered[e["dest"]], errors="surrogate_or_strict"),
                    owner=e["owner"], group=e["group"], mode=e["mode"], validate=e["validate"], secret=e["secret"])
                    for e in files if e["dest"] in stale])
                res = self._module("selfhost.supabase.host_files", args, task_vars)
                result.update(changed=res.get("changed", False), dirs=res.get("dirs", []), written=res.get("written", []))
                if res.get("diff"):
                    result["diff"] = res["diff"]
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
