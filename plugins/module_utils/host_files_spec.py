# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""The options of selfhost.supabase.host_files, shared by its action plugin (which
does the work) and its module file (which documents it)."""

from __future__ import annotations

_ENTRY = dict(owner=dict(type="raw", default="root"), group=dict(type="raw", default="root"),
              mode=dict(type="raw", default="0644"))

ARGUMENT_SPEC = dict(
    dirs=dict(type="list", elements="dict", default=[],
              options=dict(path=dict(type="path", required=True), **_ENTRY)),
    files=dict(type="list", elements="dict", default=[],
               options=dict(dest=dict(type="path", required=True), template=dict(type="path"),
                            src=dict(type="path"), content=dict(type="str", no_log=False),
                            vars=dict(type="dict", default={}), validate=dict(type="str"),
                            secret=dict(type="bool", default=False), **_ENTRY),
               mutually_exclusive=[("template", "src", "content")],
               required_one_of=[("template", "src", "content")]),
)
