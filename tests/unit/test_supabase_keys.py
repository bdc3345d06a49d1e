"""The API-key filters: tokens other JWT implementations accept, and refusals."""

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.filter.supabase_keys import (  # noqa: E402
    supabase_api_key, supabase_jwt_claims, supabase_jwt_verifies)

SECRET = "k3Jx9Vq0s1Lr7Tz2Wm5Yb8Nc4Hd6Gf0AaBbCcDd"
IAT = 1767225600


def openssl_hs256(secret, signing_input):
    """The signature as openssl computes it: an implementation independent of ours."""
    mac = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", secret, "-binary"],
                         input=signing_input.encode(), capture_output=True, check=True).stdout
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def part(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


@pytest.mark.parametrize("role", ["anon", "service_role"])
def test_api_keys_carry_the_claims_supabase_expects_and_verify_with_openssl(role):
    token = supabase_api_key(SECRET, role, IAT)
    head, body, sig = token.split(".")
    assert part(head) == {"alg": "HS256", "typ": "JWT"}
    assert part(body) == {"role": role, "iss": "supabase", "iat": IAT, "exp": IAT + 5 * 365 * 86400}
    assert sig == openssl_hs256(SECRET, f"{head}.{body}")
    assert supabase_jwt_claims(token, SECRET)["role"] == role


def test_a_key_is_stable_for_the_same_secret_and_iat():
    assert supabase_api_key(SECRET, "anon", IAT) == supabase_api_key(SECRET, "anon", str(IAT))
    assert supabase_api_key(SECRET, "anon", IAT) != supabase_api_key(SECRET + "x", "anon", IAT)


def test_claims_of_a_token_made_elsewhere():
    # A token signed by openssl, not by our code.
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(b'{"role":"anon","iss":"supabase-demo"}').rstrip(b"=").decode()
    token = f"{head}.{body}.{openssl_hs256(SECRET, f'{head}.{body}')}"
    assert supabase_jwt_claims(token, SECRET) == {"role": "anon", "iss": "supabase-demo"}
    assert supabase_jwt_claims(token)["iss"] == "supabase-demo"


def test_a_wrong_secret_or_a_tampered_token_does_not_verify():
    token = supabase_api_key(SECRET, "anon", IAT)
    assert not supabase_jwt_verifies(token, SECRET[:-1] + "X")
    head, body, sig = token.split(".")
    forged = base64.urlsafe_b64encode(b'{"role":"service_role","iss":"supabase"}').rstrip(b"=").decode()
    assert not supabase_jwt_verifies(f"{head}.{forged}.{sig}", SECRET)
    assert supabase_jwt_verifies(token, SECRET)


@pytest.mark.parametrize("secret, role, iat, message", [
    ("short", "anon", IAT, "at least 32 characters"),
    (SECRET, "admin", IAT, "role must be one of anon, service_role"),
    (SECRET, "anon", "yesterday", "iat must be seconds since the epoch"),
])
def test_bad_input_is_refused(secret, role, iat, message):
    with pytest.raises(AnsibleFilterError, match=message):
        supabase_api_key(secret, role, iat)


def test_not_a_token():
    with pytest.raises(AnsibleFilterError, match="not a JSON Web Token"):
        supabase_jwt_claims("abc.def")
