"""The new API keys (filters of supabase_new_keys.py): the ES256 key pair in JWT_KEYS and
JWT_JWKS, the internal ES256 keys verified by openssl from the JWKS alone, the opaque
sb_ keys' format and checksum, and the refusals of keys that do not fit together."""

import base64
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.filter.supabase_new_keys import (  # noqa: E402
    supabase_es256_key, supabase_jwks, supabase_jwks_verifies, supabase_jwt_keys, supabase_key_problems,
    supabase_opaque_key)

SECRET = "a-jwt-secret-of-forty-characters-0123456"
IAT = 1767225600


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def der_length(n):
    return bytes([n]) if n < 128 else bytes([0x81, n])


def der_integer(value):
    value = value.lstrip(b"\0") or b"\0"
    if value[0] & 0x80:
        value = b"\0" + value
    return b"\x02" + der_length(len(value)) + value


def openssl_es256_verifies(token, jwk, tmp_path):
    """openssl's own check of an ES256 JWT against an EC public JWK (x, y), with the key and
    the signature re-encoded by hand (SubjectPublicKeyInfo, DER ECDSA-Sig-Value)."""
    head, body, sig = token.split(".")
    spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + b"\x04" + unb64(jwk["x"]) \
        + unb64(jwk["y"])
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(spki).decode() + "-----END PUBLIC KEY-----\n"
    (tmp_path / "pub.pem").write_text(pem)
    raw = unb64(sig)
    seq = der_integer(raw[:32]) + der_integer(raw[32:])
    (tmp_path / "sig.der").write_bytes(b"\x30" + der_length(len(seq)) + seq)
    res = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature",
                          str(tmp_path / "sig.der")], input=f"{head}.{body}".encode(), capture_output=True)
    return res.returncode == 0


@pytest.fixture(scope="module")
def keys():
    return supabase_jwt_keys(SECRET)


def test_jwt_keys_hold_one_p256_private_key_and_jwt_secret_as_hs256(keys):
    ec, oct_key = json.loads(keys)
    assert ec["kty"] == "EC" and ec["crv"] == "P-256" and ec["alg"] == "ES256" and ec["use"] == "sig"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", ec["kid"])
    assert all(len(unb64(ec[c])) == 32 for c in ("x", "y", "d"))
    assert oct_key == {"kty": "oct", "k": base64.urlsafe_b64encode(SECRET.encode()).rstrip(b"=").decode(),
                       "alg": "HS256"}


def test_the_jwks_is_the_public_half_and_keeps_no_private_part(keys):
    jwks = json.loads(supabase_jwks(keys))
    ec, oct_key = jwks["keys"]
    assert "d" not in ec and ec["key_ops"] == ["verify"] and ec["kid"] == json.loads(keys)[0]["kid"]
    assert oct_key == json.loads(keys)[1]


@pytest.mark.parametrize("role", ["anon", "service_role"])
def test_internal_keys_verify_with_openssl_from_the_jwks_alone(keys, role, tmp_path):
    token = supabase_es256_key(keys, role, IAT)
    head, body, _ = token.split(".")
    assert json.loads(unb64(head)) == {"alg": "ES256", "typ": "JWT", "kid": json.loads(keys)[0]["kid"]}
    assert json.loads(unb64(body)) == {"role": role, "iss": "supabase", "iat": IAT, "exp": IAT + 5 * 365 * 86400}
    ec = json.loads(supabase_jwks(keys))["keys"][0]
    assert openssl_es256_verifies(token, ec, tmp_path)
    assert supabase_jwks_verifies(token, supabase_jwks(keys))
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert not openssl_es256_verifies(tampered, ec, tmp_path)
    assert not supabase_jwks_verifies(tampered, supabase_jwks(keys))
    other = supabase_jwks(supabase_jwt_keys(SECRET))
    assert not supabase_jwks_verifies(token, other)


def test_a_new_secret_keeps_the_key_pair_and_changes_the_hs256_key(keys):
    again = supabase_jwt_keys("another-jwt-secret-of-forty-characters-9", keys)
    assert json.loads(again)[0] == json.loads(keys)[0]
    assert json.loads(again)[1]["k"] != json.loads(keys)[1]["k"]
    assert json.loads(supabase_jwt_keys(SECRET))[0]["kid"] != json.loads(keys)[0]["kid"]


@pytest.mark.parametrize("prefix, length", [("sb_publishable_", 46), ("sb_secret_", 41)])
def test_opaque_keys_have_upstream_s_form_and_checksum(prefix, length):
    made = {supabase_opaque_key(prefix) for _ in range(50)}
    assert len(made) == 50
    for key in made:
        assert len(key) == length and re.fullmatch(re.escape(prefix) + r"[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{8}", key)
        digest = hashlib.sha256(("supabase-self-hosted|" + key[:-9]).encode()).digest()
        assert key[-8:] == base64.urlsafe_b64encode(digest).decode()[:8]
    assert supabase_key_problems({"SUPABASE_PUBLISHABLE_KEY" if "publishable" in prefix else "SUPABASE_SECRET_KEY":
                                  made.pop()}) == []


def test_keys_that_fit_together_raise_no_problem(keys):
    values = {"JWT_SECRET": SECRET, "JWT_KEYS": keys, "JWT_JWKS": supabase_jwks(keys),
              "ANON_KEY_ASYMMETRIC": supabase_es256_key(keys, "anon", IAT),
              "SERVICE_ROLE_KEY_ASYMMETRIC": supabase_es256_key(keys, "service_role", IAT),
              "SUPABASE_PUBLISHABLE_KEY": supabase_opaque_key("sb_publishable_"),
              "SUPABASE_SECRET_KEY": supabase_opaque_key("sb_secret_")}
    assert supabase_key_problems(values) == []


def test_keys_that_do_not_fit_are_named_never_printed(keys):
    other = supabase_jwt_keys(SECRET)
    good = supabase_opaque_key("sb_publishable_")
    broken = good[:-1] + ("A" if good[-1] != "A" else "B")
    values = {"JWT_SECRET": "a-different-secret-of-forty-characters-00", "JWT_KEYS": keys,
              "JWT_JWKS": supabase_jwks(other),
              "ANON_KEY_ASYMMETRIC": supabase_es256_key(other, "anon", IAT),
              "SERVICE_ROLE_KEY_ASYMMETRIC": supabase_es256_key(keys, "anon", IAT),
              "SUPABASE_PUBLISHABLE_KEY": broken, "SUPABASE_SECRET_KEY": "sb_secret_short"}
    problems = supabase_key_problems(values)
    text = " ".join(problems)
    assert len(problems) == 6, problems
    for name in ("SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY", "JWT_KEYS' HS256 key", "JWT_JWKS is not",
                 "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC is not an ES256 key of role service_role"):
        assert name in text
    assert broken not in text and keys not in text


def test_malformed_jwt_keys_are_refused():
    assert "JWT_KEYS is refused" in " ".join(supabase_key_problems({"JWT_KEYS": "[]"}))
    assert "JWT_KEYS is refused" in " ".join(supabase_key_problems({"JWT_KEYS": "not json"}))
    with pytest.raises(AnsibleFilterError, match="at least 32"):
        supabase_jwt_keys("short")
    with pytest.raises(AnsibleFilterError, match="prefix"):
        supabase_opaque_key("sb_other_")


def test_derived_keys_are_kept_while_they_fit_and_follow_a_new_jwt_secret():
    from ansible_collections.selfhost.supabase.plugins.filter.supabase_new_keys import supabase_new_keys
    first = supabase_new_keys({"JWT_SECRET": SECRET, "API_KEYS_IAT": IAT, "JWT_KEYS": ""})
    assert supabase_key_problems({"JWT_SECRET": SECRET, **first}) == []
    # A re-run changes nothing.
    assert supabase_new_keys({"JWT_SECRET": SECRET, "API_KEYS_IAT": IAT, **first}) == first
    # A new JWT_SECRET: the key pair and the internal keys stay, the HS256 key and the JWKS follow it.
    new_secret = "a-rotated-jwt-secret-of-forty-chars-0000"
    rotated = supabase_new_keys({"JWT_SECRET": new_secret, "API_KEYS_IAT": IAT, **first})
    assert supabase_key_problems({"JWT_SECRET": new_secret, **rotated}) == []
    assert json.loads(rotated["JWT_KEYS"])[0] == json.loads(first["JWT_KEYS"])[0]
    assert rotated["JWT_JWKS"] != first["JWT_JWKS"]
    assert rotated["ANON_KEY_ASYMMETRIC"] == first["ANON_KEY_ASYMMETRIC"]
    # A new key pair (JWT_KEYS rotated away): the internal keys are signed again.
    renewed = supabase_new_keys({"JWT_SECRET": SECRET, "API_KEYS_IAT": IAT, **first, "JWT_KEYS": ""})
    assert json.loads(renewed["JWT_KEYS"])[0]["kid"] != json.loads(first["JWT_KEYS"])[0]["kid"]
    assert renewed["ANON_KEY_ASYMMETRIC"] != first["ANON_KEY_ASYMMETRIC"]
    assert supabase_key_problems({"JWT_SECRET": SECRET, **renewed}) == []


def test_a_stored_jwt_keys_that_is_not_json_is_replaced_and_odd_tokens_do_not_verify():
    from ansible_collections.selfhost.supabase.plugins.filter.supabase_new_keys import supabase_new_keys
    made = supabase_new_keys({"JWT_SECRET": SECRET, "API_KEYS_IAT": IAT, "JWT_KEYS": "{not json",
                              "ANON_KEY_ASYMMETRIC": "W10.W10.AAAA"})
    assert supabase_key_problems({"JWT_SECRET": SECRET, **made}) == []
    assert not supabase_jwks_verifies("W10.W10.AAAA", made["JWT_JWKS"])
    assert not supabase_jwks_verifies("a.b", made["JWT_JWKS"])
