# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Filters for Supabase's new API keys: the ES256 signing key pair (JWT_KEYS for Auth,
JWT_JWKS for the services that verify), the internal ES256 API keys the gateway hands
on, and the opaque sb_publishable_/sb_secret_ keys clients hold.

Formats as upstream's self-hosted release has them: JWT_KEYS is a JSON array of the
EC P-256 private JWK and an HS256 "oct" JWK of JWT_SECRET's text; JWT_JWKS a JWKS
object of the EC public JWK and the same oct JWK (so it is secret too); an opaque key
is prefix + 22 random base64url characters + "_" + the first 8 base64url characters
of sha256("supabase-self-hosted|" + prefix + random)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid

from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.supabase.plugins.module_utils.api_key_jwt import (
    api_key_signing_input, b64url as _b64, unb64url as _unb64)

# Documentation: supabase_jwt_keys.yml, supabase_jwks.yml, supabase_es256_key.yml,
# supabase_opaque_key.yml, supabase_key_problems.yml, supabase_new_keys.yml beside this file.

OPAQUE_PREFIXES = ("sb_publishable_", "sb_secret_")
_PROJECT_REF = "supabase-self-hosted"
_OPAQUE = re.compile(r"^(sb_publishable_|sb_secret_)([A-Za-z0-9_-]{22})_([A-Za-z0-9_-]{8})$")
_YEARS = 5


def _crypto():
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils
    except ImportError:  # pragma: no cover - ansible-core depends on cryptography
        raise AnsibleFilterError("the new API keys need the Python package cryptography on the controller")
    return hashes, ec, utils


def _oct(jwt_secret):
    return {"kty": "oct", "k": _b64(jwt_secret.encode()), "alg": "HS256"}


def _load(value, what):
    if isinstance(value, (list, dict)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"{what} is not JSON")


def _header(token):
    """A JWT's header, or {} when it is not one."""
    try:
        header = json.loads(_unb64(str(token).split(".", maxsplit=1)[0]))
    except (ValueError, TypeError):
        return {}
    return header if isinstance(header, dict) else {}


def _ec_private(jwt_keys):
    keys = _load(jwt_keys, "JWT_KEYS")
    if not isinstance(keys, list):
        raise AnsibleFilterError("JWT_KEYS must be a JSON array of JWKs")
    found = [k for k in keys if isinstance(k, dict) and k.get("kty") == "EC"]
    if len(found) != 1 or not all(found[0].get(f) for f in ("crv", "x", "y", "d", "kid")) \
            or found[0]["crv"] != "P-256":
        raise AnsibleFilterError("JWT_KEYS must hold exactly one EC P-256 private JWK with kid, x, y and d")
    return found[0]


def _private_key(jwk):
    ec = _crypto()[1]
    try:
        numbers = ec.EllipticCurvePrivateNumbers(
            int.from_bytes(_unb64(jwk["d"]), "big"),
            ec.EllipticCurvePublicNumbers(int.from_bytes(_unb64(jwk["x"]), "big"),
                                          int.from_bytes(_unb64(jwk["y"]), "big"), ec.SECP256R1()))
        return numbers.private_key()
    except (ValueError, TypeError, KeyError):
        raise AnsibleFilterError("JWT_KEYS' EC key is not a valid P-256 key pair")


def _public_key(jwk):
    ec = _crypto()[1]
    try:
        return ec.EllipticCurvePublicNumbers(int.from_bytes(_unb64(jwk["x"]), "big"),
                                             int.from_bytes(_unb64(jwk["y"]), "big"), ec.SECP256R1()).public_key()
    except (ValueError, TypeError, KeyError):
        return None


def supabase_jwt_keys(jwt_secret, jwt_keys=None):
    """JWT_KEYS for JWT_SECRET: the EC key of jwt_keys when given (a new one otherwise) and
    the oct key of jwt_secret, as compact JSON."""
    if not isinstance(jwt_secret, str) or len(jwt_secret) < 32:
        raise AnsibleFilterError("supabase_jwt_keys: JWT_SECRET must be a string of at least 32 characters")
    if jwt_keys:
        private = dict(_ec_private(jwt_keys))
        _private_key(private)
    else:
        ec = _crypto()[1]
        numbers = ec.generate_private_key(ec.SECP256R1()).private_numbers()
        private = {"kty": "EC", "kid": str(uuid.uuid4()), "use": "sig", "key_ops": ["sign", "verify"],
                   "alg": "ES256", "ext": True, "crv": "P-256",
                   "x": _b64(numbers.public_numbers.x.to_bytes(32, "big")),
                   "y": _b64(numbers.public_numbers.y.to_bytes(32, "big")),
                   "d": _b64(numbers.private_value.to_bytes(32, "big"))}
    return json.dumps([private, _oct(jwt_secret)], separators=(",", ":"))


def supabase_jwks(jwt_keys):
    """JWT_JWKS of JWT_KEYS: the EC public key and the oct key, as a compact JWKS object."""
    keys = _load(jwt_keys, "JWT_KEYS")
    private = _ec_private(keys)
    public = {k: v for k, v in private.items() if k != "d"}
    public["key_ops"] = ["verify"]
    octs = [k for k in keys if isinstance(k, dict) and k.get("kty") == "oct"]
    return json.dumps({"keys": [public, *octs]}, separators=(",", ":"))


def supabase_es256_key(jwt_keys, role, iat):
    """The internal ES256 API key of a role, signed with JWT_KEYS' EC key."""
    private = _ec_private(jwt_keys)
    try:
        signing_input = api_key_signing_input({"alg": "ES256", "typ": "JWT", "kid": private["kid"]}, role, iat,
                                              _YEARS)
    except ValueError as e:
        raise AnsibleFilterError(f"supabase_es256_key: {e}")
    hashes, ec, utils = _crypto()
    der = _private_key(private).sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _jwks_verifies(token, jwks):
    """The claims of token when a key of jwks verifies it (ES256 by kid, or HS256 by an oct key)."""
    hashes, ec, utils = _crypto()
    try:
        head, body, signature = str(token).split(".")
        header = json.loads(_unb64(head))
        claims = json.loads(_unb64(body))
        raw = _unb64(signature)
        jwks = _load(jwks, "JWT_JWKS")
    except (ValueError, TypeError, AnsibleFilterError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    keys = jwks if isinstance(jwks, list) else jwks.get("keys", []) if isinstance(jwks, dict) else []
    signing_input = f"{head}.{body}".encode()
    for key in keys:
        if not isinstance(key, dict):
            continue
        if header.get("alg") == "ES256" and key.get("kty") == "EC" and key.get("kid") == header.get("kid"):
            public = _public_key(key)
            if public is None or len(raw) != 64:
                continue
            der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            try:
                public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
                return claims
            except Exception:  # cryptography's InvalidSignature
                continue
        if header.get("alg") == "HS256" and key.get("kty") == "oct":
            mac = hmac.new(_unb64(key.get("k", "")), signing_input, hashlib.sha256).digest()
            if hmac.compare_digest(mac, raw):
                return claims
    return None


def supabase_jwks_verifies(token, jwks):
    """True when a key of the JWKS verifies token's signature."""
    return _jwks_verifies(token, jwks) is not None


def _checksum(intermediate):
    return _b64(hashlib.sha256(f"{_PROJECT_REF}|{intermediate}".encode()).digest())[:8]


def supabase_opaque_key(prefix):
    """A new opaque API key: sb_publishable_ or sb_secret_, 22 random characters, its checksum."""
    if prefix not in OPAQUE_PREFIXES:
        raise AnsibleFilterError(f"supabase_opaque_key: the prefix must be one of {', '.join(OPAQUE_PREFIXES)}")
    intermediate = prefix + _b64(secrets.token_bytes(17))[:22]
    return f"{intermediate}_{_checksum(intermediate)}"


def opaque_key_valid(key, prefix):
    match = _OPAQUE.match(key) if isinstance(key, str) else None
    return bool(match) and match.group(1) == prefix and match.group(3) == _checksum(match.group(1) + match.group(2))


def supabase_key_problems(values):
    """Sentences naming what is wrong with a set of new keys (names only, never a value):
    a malformed opaque key, JWT_KEYS that do not hold JWT_SECRET or a valid EC key, a
    JWT_JWKS that is not JWT_KEYS', an internal key JWT_JWKS does not verify or whose role
    is not its own."""
    problems = []
    for name, prefix in (("SUPABASE_PUBLISHABLE_KEY", "sb_publishable_"), ("SUPABASE_SECRET_KEY", "sb_secret_")):
        if name in values and not opaque_key_valid(values[name], prefix):
            problems.append(f"{name} is not a key of the form {prefix}<22 characters>_<8-character checksum> "
                            "(its checksum does not match, or its length or characters are wrong).")
    if "JWT_KEYS" not in values:
        return problems
    try:
        keys = _load(values["JWT_KEYS"], "JWT_KEYS")
        _private_key(_ec_private(keys))
    except AnsibleFilterError as e:
        return problems + [f"JWT_KEYS is refused: {e}."]
    octs = [k.get("k") for k in keys if isinstance(k, dict) and k.get("kty") == "oct"]
    if "JWT_SECRET" in values and octs != [_b64(str(values["JWT_SECRET"]).encode())]:
        problems.append("JWT_KEYS' HS256 key is not JWT_SECRET's (after a new JWT_SECRET, JWT_KEYS is derived again "
                        "when it is not set by hand).")
    jwks = values.get("JWT_JWKS")
    if jwks is not None and _load(jwks, "JWT_JWKS") != json.loads(supabase_jwks(keys)):
        problems.append("JWT_JWKS is not the public half of JWT_KEYS: remove it to have it derived.")
    for name, role in (("ANON_KEY_ASYMMETRIC", "anon"), ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role")):
        if name in values:
            claims = _jwks_verifies(values[name], json.loads(supabase_jwks(keys)))
            if claims is None or claims.get("role") != role or _header(values[name]).get("alg") != "ES256":
                problems.append(f"{name} is not an ES256 key of role {role} signed with JWT_KEYS' EC key.")
    return problems


def _fits_ec(jwt_keys):
    try:
        _private_key(_ec_private(_load(jwt_keys, "JWT_KEYS")))
        return True
    except AnsibleFilterError:
        return False


def supabase_new_keys(values):
    """The new keys that derive from the others, each kept while it fits: JWT_KEYS (its EC
    key kept when valid, its HS256 key JWT_SECRET's), JWT_JWKS, ANON_KEY_ASYMMETRIC and
    SERVICE_ROLE_KEY_ASYMMETRIC (issued at API_KEYS_IAT)."""
    if not isinstance(values, dict) or "JWT_SECRET" not in values:
        raise AnsibleFilterError("supabase_new_keys: the input must be the secrets, JWT_SECRET among them")
    current = values.get("JWT_KEYS") or None
    if current and not isinstance(current, str):
        current = json.dumps(current, separators=(",", ":"))
    fits = bool(current) and _fits_ec(current)
    keys = supabase_jwt_keys(values["JWT_SECRET"], current if fits else None)
    if fits and json.loads(current) == json.loads(keys):
        keys = current
    jwks = supabase_jwks(keys)
    derived = {"JWT_KEYS": keys, "JWT_JWKS": jwks}
    for name, role in (("ANON_KEY_ASYMMETRIC", "anon"), ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role")):
        token = values.get(name)
        claims = _jwks_verifies(token, json.loads(jwks)) if token else None
        fits = claims is not None and claims.get("role") == role and _header(token).get("alg") == "ES256"
        derived[name] = token if fits else supabase_es256_key(keys, role, values.get("API_KEYS_IAT", 0))
    return derived


class FilterModule:
    def filters(self):
        return {"supabase_jwt_keys": supabase_jwt_keys, "supabase_jwks": supabase_jwks,
                "supabase_es256_key": supabase_es256_key, "supabase_jwks_verifies": supabase_jwks_verifies,
                "supabase_opaque_key": supabase_opaque_key, "supabase_key_problems": supabase_key_problems,
                "supabase_new_keys": supabase_new_keys}
