"""Least privilege for the services' database logins (1 master + 1 replica,
inventories/lab): each role the stack lets have a password of its own has
one, the services are configured with it, and POSTGRES_PASSWORD no longer
opens those roles."""

import json
import os
import re
import subprocess

import pytest
import yaml

from conftest import INVENTORY, PREFIX, PROJECT, SECRETS, secret, vm_host

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


def compose_environments():
    """Each service's environment as Compose resolves it from the rendered files on vm1 (its
    JSON writes a $ as $$, for use as a compose file again)."""
    config = json.loads(vm_host("vm1").check_output(
        f"cd {PROJECT} && docker compose -f docker-compose-master.yml config --format json"))
    return {name: {key: str(value).replace("$$", "$") for key, value in (service.get("environment") or {}).items()}
            for name, service in config["services"].items()}


def test_the_services_log_in_as_their_role_with_its_password():
    values = secrets()
    env = compose_environments()
    assert f"//authenticator:{values['AUTHENTICATOR_PASSWORD']}@" in env["rest"]["PGRST_DB_URI"]
    assert f"//supabase_auth_admin:{values['AUTH_ADMIN_PASSWORD']}@" in env["auth"]["GOTRUE_DB_DATABASE_URL"]
    assert f"//supabase_storage_admin:{values['STORAGE_ADMIN_PASSWORD']}@" in env["storage"]["DATABASE_URL"]
    # The roles upstream's images tie to POSTGRES_PASSWORD keep it (docs/architecture.md: Least privilege).
    assert env["realtime"]["DB_PASSWORD"] == secret("postgres_password")


def test_the_pooler_tenant_logs_in_with_what_its_rendered_configuration_holds():
    """Supavisor's tenant (volumes/pooler/pooler.exs) connects as its manager user with the
    password its environment gives: that login must open the real database."""
    vm1 = vm_host("vm1")
    exs = vm1.file(f"{PROJECT}/volumes/pooler/pooler.exs").content_string
    user = re.search(r'"db_user" => "([^"]+)"', exs).group(1)
    source = re.search(r'"db_password" => System\.get_env\("([A-Z_]+)"\)', exs).group(1)
    password = compose_environments()["supavisor"][source]
    ok, err = login("vm1", user, password)
    assert ok, f"the pooler's {user} login with ${source} fails: {err}"


def test_values_with_shell_env_and_yaml_syntax_reach_the_services_unchanged():
    """The lab's passwords and its own SMTP_PASS hold quotes, #, $(...), $NAME, @, / and a
    backslash (inventories/lab): Compose gives the services exactly those values."""
    env = compose_environments()
    smtp = yaml.safe_load((INVENTORY / "group_vars" / "lab.yml").read_text())["cluster_supabase_secrets"]["SMTP_PASS"]
    assert set("'#$()\"@/\\`") <= set(smtp)
    assert env["auth"]["GOTRUE_SMTP_PASS"] == smtp
    assert set("$()'") <= set(secret("postgres_password"))
    assert env["db"]["POSTGRES_PASSWORD"] == secret("postgres_password")
    assert f"supabase_admin:{secret('postgres_password')}@" in env["supavisor"]["DATABASE_URL"]
    # The running database container was given it too, and it opens the database.
    running = vm_host("vm1").check_output("docker inspect -f '{{json .Config.Env}}' supabase-db")
    assert f"POSTGRES_PASSWORD={secret('postgres_password')}" in json.loads(running)
    ok, err = login("vm1", "supabase_admin", secret("postgres_password"))
    assert ok, err
