"""Least privilege for the services' database logins (1 master + 1 replica,
inventories/lab): each role the stack lets have a password of its own has
one, the services are configured with it, and POSTGRES_PASSWORD no longer
opens those roles."""

import json
import os
import subprocess

import pytest
import yaml

from conftest import PREFIX, PROJECT, SECRETS, secret, vm_host

pytestmark = [pytest.mark.default, pytest.mark.usefixtures("lab_up")]

OWN_PASSWORD = {"authenticator": "AUTHENTICATOR_PASSWORD", "supabase_auth_admin": "AUTH_ADMIN_PASSWORD",
                "supabase_storage_admin": "STORAGE_ADMIN_PASSWORD",
                "supabase_functions_admin": "FUNCTIONS_ADMIN_PASSWORD", "pgbouncer": "PGBOUNCER_PASSWORD"}


def secrets():
    return yaml.safe_load((SECRETS / "supabase-secrets.yml").read_text())


def login(vm, role, password):
    """A password login over TCP inside the database container; (succeeded, stderr)."""
    env = dict(os.environ, PGPASSWORD=password)
    res = subprocess.run(["docker", "exec", "-e", "PGPASSWORD", f"{PREFIX}-{vm}", "docker", "exec", "-e",
                          "PGPASSWORD", "supabase-db", "psql", "-h", "127.0.0.1", "-U", role, "-d", "postgres",
                          "-Atc", "SELECT current_user"], env=env, capture_output=True, text=True, timeout=30)
    return res.returncode == 0 and res.stdout.strip() == role, res.stderr


@pytest.mark.parametrize("vm", ["vm1", "vm2"])
def test_each_service_role_opens_with_its_own_password_and_not_with_postgres_password(vm):
    values = secrets()
    passwords = [values[name] for name in OWN_PASSWORD.values()]
    assert len(set(passwords) | {secret("postgres_password")}) == len(OWN_PASSWORD) + 1
    for role, name in OWN_PASSWORD.items():
        ok, err = login(vm, role, values[name])
        assert ok, f"{role}: {err}"
        ok, err = login(vm, role, secret("postgres_password"))
        assert not ok and "password authentication failed" in err, role


def test_the_services_log_in_as_their_role_with_its_password():
    values = secrets()
    config = json.loads(vm_host("vm1").check_output(
        f"cd {PROJECT} && docker compose -f docker-compose-master.yml config --format json"))
    env = {name: service.get("environment", {}) for name, service in config["services"].items()}
    assert f"//authenticator:{values['AUTHENTICATOR_PASSWORD']}@" in env["rest"]["PGRST_DB_URI"]
    assert f"//supabase_auth_admin:{values['AUTH_ADMIN_PASSWORD']}@" in env["auth"]["GOTRUE_DB_DATABASE_URL"]
    assert f"//supabase_storage_admin:{values['STORAGE_ADMIN_PASSWORD']}@" in env["storage"]["DATABASE_URL"]
    # The roles upstream's images tie to POSTGRES_PASSWORD keep it (docs/architecture.md: Least privilege).
    assert env["realtime"]["DB_PASSWORD"] == secret("postgres_password")
