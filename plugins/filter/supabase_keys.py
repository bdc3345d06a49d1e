# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Filters for Supabase API keys: HS256 JSON Web Tokens signed with JWT_SECRET."""

from __future__ import annotations

import hashlib
import hmac
import json

from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.supabase.plugins.module_utils.api_key_jwt import (
    api_key_signing_input, b64url as _b64, unb64url as _unb64)

# Documentation: supabase_api_key.yml, supabase_jwt_claims.yml, supabase_jwt_verifies.yml beside this file.


def _sign(secret: str, signing_input: str) -> str:
    return _b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())


def supabase_api_key(secret, role, iat, years=5):
    if not isinstance(secret, str) or len(secret) < 32:
        raise AnsibleFilterError("supabase_api_key: JWT_SECRET must be a string of at least 32 characters")
    try:
        signing_input = api_key_signing_input({"alg": "HS256", "typ": "JWT"}, role, iat, years)
    except ValueError as e:
        raise AnsibleFilterError(f"supabase_api_key: {e}")
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
