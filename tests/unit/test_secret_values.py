"""Secrets written where they land: .env lines read back by Compose itself, libpq
connection strings by libpq, and the refusals of what no format can carry."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg2.extensions
import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.filter.secret_values import (  # noqa: E402
    conninfo_quote, env_quote, htpasswd_sha, secret_problems)

HOSTILE = ["plain0123", "", "it's", 'say "hi"', "a #comment", "a#b", "$(id)", "${HOME}", "$HOME", "$$",
           "back\\slash", "trailing\\", "`id`", " leading and trailing ", "@host/path?x=1&y=2", "=;:,*!~",
           "ünïcødé", "\\'", "'\"'\"'", "no-break\u00a0space\u00a0", "\u2003em space"]


@pytest.mark.skipif(not shutil.which("docker"), reason="needs the docker CLI with Compose (make setup)")
def test_compose_reads_every_quoted_value_back_exactly(tmp_path):
    lines = [f"V{i}={env_quote(value)}" for i, value in enumerate(HOSTILE)]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    (tmp_path / "compose.yml").write_text(json.dumps({"services": {"s": {"image": "x", "environment": {
        f"V{i}": "${V%d}" % i for i in range(len(HOSTILE))}}}}))
    out = subprocess.run(["docker", "compose", "--project-directory", str(tmp_path), "config", "--format", "json"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    env = json.loads(out)["services"]["s"]["environment"]
    # Compose's JSON output writes a $ as $$ (a compose file's escape).
    assert {k: (v or "").replace("$$", "$") for k, v in env.items()} == {f"V{i}": v for i, v in enumerate(HOSTILE)}


def test_plain_values_stay_unquoted_so_existing_files_do_not_change():
    assert env_quote("Ab0-_.:/+=@,%") == "Ab0-_.:/+=@,%"
    assert env_quote("") == ""
    assert env_quote(5432) == "5432"
    assert env_quote(True) == "true"
    assert env_quote("a b") == '"a b"'


def test_a_control_character_is_never_written_into_env():
    with pytest.raises(AnsibleFilterError, match="control character"):
        env_quote("one\ntwo")


@pytest.mark.parametrize("value", HOSTILE)
def test_libpq_reads_the_quoted_value_back_exactly(value):
    parsed = psycopg2.extensions.parse_dsn(f"host=db password={conninfo_quote(value)} user=r")
    assert parsed == {"host": "db", "password": value, "user": "r"}


def test_refusals_name_the_secret_and_the_characters_never_the_value():
    problems = secret_problems(
        {"SMTP_PASS": "first\nsecond", "POSTGRES_PASSWORD": "pw@db/x:y", "S3": " padded",
         "OK": "$(id)'!&*", "TAB": "a\tb", "NUM": ["a", "list"], "INT": 12, "UNSET": None, "FINE_URL": "$(id)'!&*-._~"},
        url=["POSTGRES_PASSWORD", "FINE_URL"], trimmed=["S3"])
    text = " ".join(problems)
    assert len(problems) == 5, problems
    assert "SMTP_PASS holds a newline" in text
    assert "POSTGRES_PASSWORD holds '@', '/', ':'" in text and "connection URLs" in text
    assert "S3 begins or ends with a space" in text
    assert "TAB holds a tab" in text
    assert "NUM must be a string" in text
    for value in ("first", "second", "pw@db", "padded"):
        assert value not in text


def test_nothing_to_refuse_is_an_empty_list():
    assert secret_problems({"A": "Zz09", "B": "it's #1 $(id) \"x\" @/ \\"}, url=["A"]) == []


def test_the_input_must_be_a_mapping():
    with pytest.raises(AnsibleFilterError, match="mapping"):
        secret_problems(["not", "a", "mapping"])


def test_the_dashboard_login_hash_is_htpasswd_s_sha_entry():
    """Envoy's basic authentication reads htpasswd's {SHA} form: base64 of the SHA-1 digest
    (computed here by openssl), for a password with quotes, blanks and $."""
    import base64
    password = "it's \"a\" pass word $1"
    digest = subprocess.run(["openssl", "dgst", "-sha1", "-binary"], input=password.encode(), capture_output=True,
                            check=True).stdout
    assert htpasswd_sha(password) == "{SHA}" + base64.b64encode(digest).decode()
    assert htpasswd_sha("x") != htpasswd_sha("y")
