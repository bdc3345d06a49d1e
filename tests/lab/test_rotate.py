"""playbooks/rotate_secret.yml on the deployed lab (1 master + 1 replica): one
command replaces JWT_SECRET everywhere, with new API keys, and leaves every
other secret as it was; bad requests change nothing."""

import base64
import hashlib
import hmac
import json

import pytest
import yaml

from conftest import (PROJECT, SECRETS, ansible_playbook, no_secret_in, psql, secret_values, verbose_run, vm_host,
                      vm_state, wait_until)

pytestmark = [pytest.mark.default, pytest.mark.usefixtures("lab_up")]


def stored():
    return yaml.safe_load((SECRETS / "supabase-secrets.yml").read_text())


def verifies(token, secret):
    """HS256 check written here, independent of the collection's filter."""
    head, body, sig = token.split(".")
    mac = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == sig


def role_of(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["role"]


@pytest.mark.parametrize("extra, message", [
    ([], "Name the secret to rotate: -e secret=NAME"),
    (["-e", "secret=NOT_A_SECRET"], "NOT_A_SECRET is not a secret the collection generates"),
    (["-e", "secret=ANON_KEY"], "ANON_KEY is not a secret the collection generates"),
])
def test_a_bad_request_is_refused_before_any_change(extra, message):
    before = stored(), vm_state("vm1"), vm_state("vm2")
    res = ansible_playbook("playbooks/rotate_secret.yml", "-i", "inventories/lab", *extra, timeout=300)
    assert res.returncode != 0 and message in res.stdout, res.stdout[-3000:]
    assert (stored(), vm_state("vm1"), vm_state("vm2")) == before


def test_jwt_secret_rotation_is_one_command_and_reaches_every_host(tmp_path):
    """Also the deploy that handles secrets the most (the rotation's site.yml rewrites .env and
    the gateway's lds.yaml on every host and the database's JWT settings) at -vvv: neither the old nor the
    new values in any line of its output or log."""
    before = stored()
    old_values = secret_values()
    verbose, env, log = verbose_run(tmp_path)
    res = ansible_playbook("playbooks/rotate_secret.yml", "-i", "inventories/lab", "-e", "secret=JWT_SECRET",
                           *verbose, timeout=900, env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    no_secret_in("rotate_secret.yml", res, log, old_values | secret_values())
    after = stored()
    new = after["JWT_SECRET"]
    # (Booleans first: a failing assert would print the secrets it compares.)
    changed = new != before["JWT_SECRET"] and len(new) == 40
    assert changed, "JWT_SECRET was not replaced by a new 40-character value"
    for name in ("ANON_KEY", "SERVICE_ROLE_KEY"):
        fresh = after[name] != before[name] and verifies(after[name], new)
        stale = verifies(after[name], before["JWT_SECRET"])
        assert fresh and not stale, f"{name} is not derived from the new JWT_SECRET"
    assert role_of(after["ANON_KEY"]) == "anon" and role_of(after["SERVICE_ROLE_KEY"]) == "service_role"
    # The new keys' HS256 key and JWKS follow the new secret; the key pair and what it signed stay.
    keys = json.loads(after["JWT_KEYS"])
    assert keys[0] == json.loads(before["JWT_KEYS"])[0], "the ES256 key pair changed"
    assert base64.urlsafe_b64decode(keys[1]["k"] + "=" * (-len(keys[1]["k"]) % 4)).decode() == new
    assert json.loads(after["JWT_JWKS"])["keys"][1] == keys[1]
    kept = sorted(k for k, v in before.items()
                  if k not in ("JWT_SECRET", "ANON_KEY", "SERVICE_ROLE_KEY", "JWT_KEYS", "JWT_JWKS") and after.get(k) != v)
    assert kept == [], f"other secrets changed: {kept}"
    for vm in ("vm1", "vm2"):
        host = vm_host(vm)
        env = host.file(f"{PROJECT}/.env").content_string
        rendered = (f"JWT_SECRET={new}" in env and f"ANON_KEY={after['ANON_KEY']}" in env
                    and before["JWT_SECRET"] not in env
                    and after["SERVICE_ROLE_KEY"] in host.file(f"{PROJECT}/volumes/api/envoy/lds.yaml").content_string
                    and before["SERVICE_ROLE_KEY"] not in host.file(f"{PROJECT}/volumes/api/envoy/lds.yaml").content_string)
        assert rendered, f"{vm}'s .env or the gateway's lds.yaml does not hold the new values"
    # As upstream's since 0.6.0, a new database holds no JWT secret (its expiry only).
    for vm in ("vm1", "vm2"):
        assert psql(vm, "SELECT coalesce(current_setting('app.settings.jwt_secret', true), '')") == "", vm
        assert "JWT_SECRET=" not in vm_host(vm).check_output("docker inspect -f '{{json .Config.Env}}' supabase-db")
    # The replica streams again.
    wait_until(lambda: psql("vm1", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1",
               120, interval=1)
