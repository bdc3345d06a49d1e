"""The library role selfhost.supabase.tls_certificate on this machine (the controller, where the
certificates live): it issues a list of certificates under a CA, leaves current ones alone without
starting a module, issues again the one whose names changed or whose CA is another, changes nothing
in check mode and refuses a certificate given without its names."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def make_ca(directory):
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(directory / "ca.key"), "-out", str(directory / "ca.crt"), "-days", "30",
                    "-subj", "/CN=test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, capture_output=True, timeout=60)


@pytest.fixture
def issuer(tmp_path):
    make_ca(tmp_path / "ca")
    (tmp_path / "play.yml").write_text(textwrap.dedent("""\
        - name: Issue
          hosts: localhost
          connection: local
          gather_facts: false
          tasks:
            - name: Issue the certificates
              ansible.builtin.include_role:
                name: selfhost.supabase.tls_certificate
              vars:
                tls_certificate_issuer: {dir: "{{ dir }}", ca_cert: "{{ ca }}/ca.crt", ca_key: "{{ ca }}/ca.key"}
                tls_certificate_list: "{{ certs }}"
        """))
    return tmp_path


def run(issuer, certs, *extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOWS="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    (issuer / "certs").mkdir(exist_ok=True)
    extra_vars = {"dir": str(issuer / "certs"), "ca": str(issuer / "ca"), "certs": certs}
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(issuer / "play.yml"),
                           "-e", json.dumps(extra_vars),
                           "-e", f"ansible_python_interpreter={sys.executable}", *extra],
                          env=env, capture_output=True, text=True, timeout=180)


def recap(res):
    line = next(x for x in res.stdout.splitlines() if x.startswith("localhost") and "ok=" in x)
    return {k: int(v) for k, v in (part.split("=") for part in line.split()[2:])}


def cert_text(path):
    return subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-text"], check=True,
                          capture_output=True, text=True, timeout=30).stdout


def verifies(issuer, stem):
    return subprocess.run(["openssl", "verify", "-CAfile", str(issuer / "ca" / "ca.crt"),
                           str(issuer / "certs" / f"{stem}.crt")], capture_output=True, timeout=30).returncode == 0


DB = {"stem": "vm1", "names": ["DNS:vm1", "IP:10.0.0.11"]}
BACKUP = {"stem": "vm1-pgbackrest", "cn": "vm1", "names": ["DNS:vm1"], "usages": ["serverAuth", "clientAuth"]}


def test_issues_each_then_only_the_due_one_and_the_ones_of_another_ca(issuer):
    certs = issuer / "certs"
    res = run(issuer, [DB, BACKUP])
    assert res.returncode == 0, res.stdout + res.stderr
    assert recap(res)["changed"] == 4, res.stdout  # two keys, two certificates
    assert verifies(issuer, "vm1") and verifies(issuer, "vm1-pgbackrest")
    db_text, backup_text = cert_text(certs / "vm1.crt"), cert_text(certs / "vm1-pgbackrest.crt")
    assert "DNS:vm1, IP Address:10.0.0.11" in db_text and "Subject: CN = vm1" in db_text
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in backup_text
    assert oct((certs / "vm1.key").stat().st_mode & 0o777) == "0o600"

    # Current: nothing issued, no module started (only the decision and the skipped include).
    stamps = {p.name: p.stat().st_mtime_ns for p in certs.iterdir()}
    res = run(issuer, [DB, BACKUP])
    assert res.returncode == 0, res.stderr
    assert recap(res)["changed"] == 0, res.stdout
    assert "community.crypto" not in res.stdout and "Create the private key" not in res.stdout
    assert {p.name: p.stat().st_mtime_ns for p in certs.iterdir()} == stamps

    # A new name: that certificate only, with the same key.
    res = run(issuer, [dict(DB, names=DB["names"] + ["IP:10.0.0.10"]), BACKUP])
    assert res.returncode == 0, res.stderr
    assert recap(res)["changed"] == 1, res.stdout
    assert "IP Address:10.0.0.10" in cert_text(certs / "vm1.crt")
    assert (certs / "vm1-pgbackrest.crt").stat().st_mtime_ns == stamps["vm1-pgbackrest.crt"]
    assert (certs / "vm1.key").stat().st_mtime_ns == stamps["vm1.key"]

    # Another CA: both again, both verify against it.
    for name in ("ca.key", "ca.crt"):
        (issuer / "ca" / name).unlink()
    make_ca(issuer / "ca")
    assert not verifies(issuer, "vm1")
    res = run(issuer, [dict(DB, names=DB["names"] + ["IP:10.0.0.10"]), BACKUP])
    assert res.returncode == 0, res.stderr
    assert verifies(issuer, "vm1") and verifies(issuer, "vm1-pgbackrest")


def test_check_mode_writes_nothing_and_a_certificate_without_names_is_refused(issuer):
    res = run(issuer, [DB], "--check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert list((issuer / "certs").iterdir()) == []

    res = run(issuer, [{"stem": "vm2"}])
    assert res.returncode != 0
    assert "names" in res.stdout and "required" in res.stdout, res.stdout
    assert list((issuer / "certs").iterdir()) == []
