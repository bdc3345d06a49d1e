# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""What the Supabase API keys, legacy (HS256) and new (ES256), share: base64url without
padding and the signing input of a role's key (header and claims as upstream writes them)."""

from __future__ import annotations

import base64
import json

ROLES = ("anon", "service_role")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def api_key_signing_input(header, role, iat, years):
    """header.claims of an API key for role, issued at iat and valid for years; ValueError
    on a role or an iat that is not one."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    try:
        iat = int(iat)
    except (TypeError, ValueError):
        raise ValueError(f"iat must be seconds since the epoch, got {iat!r}") from None
    payload = {"role": role, "iss": "supabase", "iat": iat, "exp": iat + int(years) * 365 * 86400}
    return ".".join(b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload))
