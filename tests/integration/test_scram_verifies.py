"""The SCRAM-SHA-256 check (filter scram_verifies) against verifiers a real PostgreSQL 15 made."""

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.filter.postgres_scram import scram_verifies  # noqa: E402


def verifier_of(server, role, password):
    server.query(f"DROP ROLE IF EXISTS {role}")
    server.query("SET password_encryption = 'scram-sha-256'")
    server.query(f"CREATE ROLE {role} LOGIN PASSWORD %s", password)
    return server.query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", role)[0][0]


@pytest.mark.parametrize("password", ["pencil", "a long one: with punctuation, spaces & quotes '\"!", "x" * 64])
def test_a_verifier_made_by_postgresql_checks_its_own_password_only(primary, password):
    verifier = verifier_of(primary, "scram_probe", password)
    assert verifier.startswith("SCRAM-SHA-256$")
    assert scram_verifies(password, verifier) is True
    assert scram_verifies(password + " ", verifier) is False
    assert scram_verifies(password.upper() if password != password.upper() else password + "y", verifier) is False


def test_the_same_password_set_again_still_verifies_though_the_salt_changed(primary):
    first = verifier_of(primary, "scram_probe", "pencil")
    second = verifier_of(primary, "scram_probe", "pencil")
    assert first != second
    assert scram_verifies("pencil", first) and scram_verifies("pencil", second)


@pytest.mark.parametrize("verifier", [
    None, "", "md5a2c5c1a1f8f2a2c8a7e1d5b0a8f4c2d1", "SCRAM-SHA-256$", "SCRAM-SHA-256$4096:salt",
    "SCRAM-SHA-256$x:8JmSd2ZGMzRoEC8E0c1+Ag==$AAAA:AAAA", "SCRAM-SHA-256$4096:!!!$AAAA:AAAA",
])
def test_anything_but_a_scram_verifier_is_false_not_an_error(verifier):
    assert scram_verifies("pencil", verifier) is False


def test_the_password_must_be_text():
    with pytest.raises(AnsibleFilterError, match="scram_verifies"):
        scram_verifies(None, "SCRAM-SHA-256$4096:AA==$AA==:AA==")
