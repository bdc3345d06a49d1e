# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Secrets written where they land: checked before anything changes, quoted for
each format that can quote them.

A secret reaches several formats: the stack's .env (read by Compose), the
connection URLs Compose builds from it, libpq connection strings, pgBackRest's
and Patroni's configuration.  Where a format can quote, the collection quotes
(env_quote, conninfo_quote; Patroni's file is written as JSON strings); where it
cannot, secret_problems names the secret and its characters so the run stops
before a file is written."""

from __future__ import annotations

import base64
import hashlib
import re

from ansible.errors import AnsibleFilterError
# The modules' quoting of a connection-string value (primary_conninfo), for the tasks.
from ansible_collections.selfhost.supabase.plugins.module_utils.datadir import conninfo_quote

# Documentation: secret_problems.yml, env_quote.yml, conninfo_quote.yml beside this file.

# Characters a URL's user-information part takes as they are (RFC 3986: unreserved
# and sub-delimiters).  Compose interpolates the password into URLs such as
# postgres://supabase_admin:${POSTGRES_PASSWORD}@db:5432/postgres and cannot
# percent-encode it, so anything else would change what the service parses.
_URL_SAFE = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=]")
# Unquoted, a .env value ends at " #", loses trailing blanks, expands $NAME and
# treats a leading quote as quoting: anything in this set makes env_quote quote it.
_ENV_SPECIAL = set(" \t#$\"'\\`")

_CONTROL_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\0": "a NUL byte"}


def _describe(char):
    if char in _CONTROL_NAMES:
        return _CONTROL_NAMES[char]
    if char == " ":
        return "a space"
    if ord(char) < 32 or 127 <= ord(char) < 160:
        return f"the control character U+{ord(char):04X}"
    return repr(char)


def _listing(chars):
    seen = []
    for char in chars:
        if char not in seen:
            seen.append(char)
    return ", ".join(_describe(c) for c in seen)


def secret_problems(values, url=None, trimmed=None):
    """One sentence per secret that cannot be written where it lands (names only,
    never a value).  values: {name: value}; url: the names that Compose puts into
    connection URLs; trimmed: the names written into files that drop leading and
    trailing blanks (pgBackRest's)."""
    if not isinstance(values, dict):
        raise AnsibleFilterError("secret_problems: the input must be a mapping of secret names to values")
    url = set(url or [])
    trimmed = set(trimmed or [])
    problems = []
    for name in sorted(values):
        value = values[name]
        if value is None:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            problems.append(f"{name} must be a string: quote it in YAML.")
            continue
        control = [c for c in value if ord(c) < 32 or 127 <= ord(c) < 160]
        if control:
            problems.append(
                f"{name} holds {_listing(control)}: no file it is written to can carry it (in .env or "
                "pgBackRest's configuration it would start a line of its own). Choose a value without it.")
            continue
        if name in url:
            unsafe = [c for c in value if not _URL_SAFE.fullmatch(c)]
            if unsafe:
                problems.append(
                    f"{name} holds {_listing(unsafe)}: it is written into the services' connection URLs "
                    "(user:password@host), where that would change what they parse. Use letters, digits and "
                    "-._~!$&'()*+,;= only.")
                continue
        if name in trimmed and value != value.strip(" "):
            problems.append(
                f"{name} begins or ends with a space: pgBackRest's configuration drops it. Choose a value "
                "without leading or trailing spaces.")
    return problems


def env_quote(value):
    """A value as a line of .env holds it for Compose: as it is when nothing in it is
    special (an empty value included), otherwise in double quotes with \\, \" and $ escaped."""
    if value is None:
        value = ""
    if isinstance(value, bool):
        value = str(value).lower()
    value = str(value)
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise AnsibleFilterError("env_quote: a .env value cannot hold a control character (newline, tab, ...)")
    if not _ENV_SPECIAL.intersection(value) and not any(c.isspace() for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def htpasswd_sha(password):
    """A password as an htpasswd file's SHA-1 entry holds it ({SHA} and the base64 of the
    digest), the one form Envoy's basic authentication reads."""
    digest = hashlib.sha1(str(password).encode("utf-8")).digest()  # nosec - the format Envoy reads
    return "{SHA}" + base64.b64encode(digest).decode("ascii")


class FilterModule:
    def filters(self):
        return {"secret_problems": secret_problems, "env_quote": env_quote, "conninfo_quote": conninfo_quote,
                "htpasswd_sha": htpasswd_sha}
