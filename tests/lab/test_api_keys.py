"""The new API keys on the deployed lab (1 master + 1 replica): generated with the other
secrets, handed to the services that use them, verifiable with the JWKS alone (checked
here by openssl, not by the collection's code), and added to a cluster deployed before
them on its next run without its legacy keys changing."""

import base64
import hashlib
import json
import re
import subprocess

import pytest
import yaml

from conftest import PROJECT, SECRETS, ansible_playbook, vm_host

pytestmark = [pytest.mark.default, pytest.mark.usefixtures("lab_up")]
NEW = ("JWT_KEYS", "JWT_JWKS", "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC", "SUPABASE_PUBLISHABLE_KEY",
       "SUPABASE_SECRET_KEY")


def stored():
    return yaml.safe_load((SECRETS / "supabase-secrets.yml").read_text())


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def der_int(raw):
    raw = raw.lstrip(b"\0") or b"\0"
    raw = b"\0" + raw if raw[0] & 0x80 else raw
    return b"\x02" + bytes([len(raw)]) + raw


def openssl_verifies(token, jwks, tmp_path):
    """An ES256 token against the JWKS' EC key of its kid, by openssl."""
    head, body, sig = token.split(".")
    kid = json.loads(unb64(head))["kid"]
    (key,) = [k for k in jwks["keys"] if k.get("kid") == kid]
    spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + b"\x04" + unb64(key["x"]) \
        + unb64(key["y"])
    (tmp_path / "k.pem").write_text("-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(spki).decode()
                                    + "-----END PUBLIC KEY-----\n")
    raw = unb64(sig)
    seq = der_int(raw[:32]) + der_int(raw[32:])
    (tmp_path / "s.der").write_bytes(b"\x30" + bytes([len(seq)]) + seq)
    return subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "k.pem"), "-signature",
                           str(tmp_path / "s.der")], input=f"{head}.{body}".encode(), capture_output=True).returncode == 0


def services_env():
    config = json.loads(vm_host("vm1").check_output(
        f"cd {PROJECT} && docker compose -f docker-compose-master.yml config --format json"))
    return {name: {k: str(v).replace("$$", "$") for k, v in (s.get("environment") or {}).items()}
            for name, s in config["services"].items()}


def test_the_new_keys_verify_with_the_jwks_and_reach_the_services(tmp_path):
    values = stored()
    jwks = json.loads(values["JWT_JWKS"])
    for name, role in (("ANON_KEY_ASYMMETRIC", "anon"), ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role")):
        ok = openssl_verifies(values[name], jwks, tmp_path)
        assert ok, f"{name} does not verify with JWT_JWKS"
        assert json.loads(unb64(values[name].split(".")[1]))["role"] == role
    assert "d" not in jwks["keys"][0] and "d" in json.loads(values["JWT_KEYS"])[0]
    for name, prefix in (("SUPABASE_PUBLISHABLE_KEY", "sb_publishable_"), ("SUPABASE_SECRET_KEY", "sb_secret_")):
        key = values[name]
        checksum = base64.urlsafe_b64encode(hashlib.sha256(f"supabase-self-hosted|{key[:-9]}".encode()).digest())
        ok = re.fullmatch(re.escape(prefix) + r"[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{8}", key) and \
            key[-8:] == checksum.decode()[:8]
        assert ok, f"{name} is not of upstream's form"
    env = services_env()
    handed = (env["auth"]["GOTRUE_JWT_KEYS"] == values["JWT_KEYS"]
              and env["rest"]["PGRST_JWT_SECRET"] == values["JWT_JWKS"]
              and env["realtime"]["API_JWT_JWKS"] == values["JWT_JWKS"]
              and env["storage"]["JWT_JWKS"] == values["JWT_JWKS"]
              and env["functions"]["SUPABASE_JWKS"] == values["JWT_JWKS"])
    assert handed, "a service is not given the new keys as generated"


def test_a_cluster_deployed_before_the_new_keys_gets_them_without_its_legacy_keys_changing():
    before = stored()
    older = {k: v for k, v in before.items() if k not in NEW}
    (SECRETS / "supabase-secrets.yml").write_text(yaml.safe_dump(older))
    res = ansible_playbook("site.yml", "-i", "inventories/lab")
    assert res.returncode == 0, res.stdout[-3000:]
    after = stored()
    assert {k: after[k] for k in older} == older, "a secret the cluster had changed"
    assert set(NEW) <= set(after)
    env = vm_host("vm1").file(f"{PROJECT}/.env").content_string
    assert f"ANON_KEY={before['ANON_KEY']}" in env and "\nSUPABASE_PUBLISHABLE_KEY=sb_publishable_" in env
    again = ansible_playbook("site.yml", "-i", "inventories/lab")
    assert again.returncode == 0 and stored() == after, "a second run changed the new keys"
