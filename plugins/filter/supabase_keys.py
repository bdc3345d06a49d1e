# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Filters for Supabase API keys: HS256 JSON Web Tokens signed with JWT_SECRET."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: supabase_api_key
short_description: Sign a Supabase API key (HS256 JWT) with JWT_SECRET
description:
  - Returns C(header.payload.signature) with header C({"alg":"HS256","typ":"JWT"}) and payload
    C({"role": ROLE, "iss": "supabase", "iat": IAT, "exp": IAT + years}).
  - The companion filter C(selfhost.supabase.supabase_jwt_claims) verifies a token and returns its claims.
options:
  _input:
    description: JWT_SECRET (at least 32 characters).
    type: str
    required: true
  role:
    description: C(anon) or C(service_role).
    type: str
    required: true
  iat:
    description: Issued-at time, seconds since the epoch; keep it fixed so the key is stable.
    type: int
    required: true
  years:
    description: Validity in years (365-day years).
    type: int
    default: 5
"""

EXAMPLES = r"""
anon_key: "{{ jwt_secret | selfhost.supabase.supabase_api_key('anon', 1767225600) }}"
claims: "{{ anon_key | selfhost.supabase.supabase_jwt_claims(jwt_secret) }}"
"""

RETURN = r"""
_value:
  description: The signed token.
  type: str
"""

ROLES = ("anon", "service_role")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, signing_input: str) -> str:
    return _b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())


def supabase_api_key(secret, role, iat, years=5):
    if not isinstance(secret, str) or len(secret) < 32:
        raise AnsibleFilterError("supabase_api_key: JWT_SECRET must be a string of at least 32 characters")
    if role not in ROLES:
        raise AnsibleFilterError(f"supabase_api_key: role must be one of {', '.join(ROLES)}, got {role!r}")
    try:
        iat = int(iat)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"supabase_api_key: iat must be seconds since the epoch, got {iat!r}")
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"role": role, "iss": "supabase", "iat": iat, "exp": iat + int(years) * 365 * 86400}
    signing_input = ".".join(_b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload))
    return f"{signing_input}.{_sign(secret, signing_input)}"


def supabase_jwt_claims(token, secret=None):
    """Claims of a JWT; with a secret, only when its HS256 signature verifies (else an error)."""
    try:
        head, body, signature = str(token).split(".")
        header = json.loads(_unb64(head))
        claims = json.loads(_unb64(body))
    except (ValueError, TypeError):
        raise AnsibleFilterError("supabase_jwt_claims: not a JSON Web Token (header.payload.signature)")
    if secret is not None:
        if header.get("alg") != "HS256":
            raise AnsibleFilterError(f"supabase_jwt_claims: alg is {header.get('alg')!r}, not HS256")
        if not hmac.compare_digest(_sign(secret, f"{head}.{body}"), signature):
            raise AnsibleFilterError("supabase_jwt_claims: the signature does not match JWT_SECRET")
    return claims


def supabase_jwt_verifies(token, secret):
    """True when token is an HS256 JWT signed with secret."""
    try:
        supabase_jwt_claims(token, secret)
    except AnsibleFilterError:
        return False
    return True


class FilterModule:
    def filters(self):
        return {"supabase_api_key": supabase_api_key, "supabase_jwt_claims": supabase_jwt_claims,
                "supabase_jwt_verifies": supabase_jwt_verifies}
