"""The full stack as the roles render it, checked without any VM: the
services and their published ports (logs on: Logflare and Vector too), every ${VAR} set, `docker compose config`
clean, the API keys the gateway holds derived from JWT_SECRET, secrets generated
once with the right sizes and never rotated by a re-run, demo values refused."""

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The release's 11 services (Logflare and Vector only with cluster_logs: tests/unit/test_conformance.py).
SERVICES = {"studio", "api-gw", "auth", "rest", "realtime", "storage", "imgproxy", "meta", "functions", "db", "supavisor"}
RELEASE = yaml.safe_load((ROOT / "roles/cluster/defaults/main/release.yml").read_text())

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI (make setup)")


def render(out, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", "tests/render/hosts.yml", "tests/render/render.yml",
                           "-e", f"render_dir={out}", *extra], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def compose_config(project, name):
    res = subprocess.run(["docker", "compose", "--project-directory", str(project), "-f", str(project / name),
                          "config", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout), res.stderr


def dotenv(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def claims(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def openssl_verifies(token, secret):
    head, body, sig = token.split(".")
    mac = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", secret, "-binary"], input=f"{head}.{body}".encode(),
                         capture_output=True, check=True).stdout
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == sig


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    res = render(out, "-e", "cluster_logs=true")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr
    return out, res


def test_the_master_compose_file_holds_the_services_of_the_pinned_release(rendered):
    out, _ = rendered
    config, warnings = compose_config(out / "vm1", "docker-compose-master.yml")
    assert set(config["services"]) == SERVICES | {"analytics", "vector"}
    assert warnings.strip() == "", f"docker compose config warned: {warnings}"
    for name, service in config["services"].items():
        key = {"db": "cluster_image_db", "api-gw": "cluster_image_envoy"}.get(name, f"cluster_image_{name}")
        assert service["image"] == RELEASE[key], name
        assert service["restart"] == "unless-stopped"
    # As upstream's since mid-2026: the database waits for nothing (not for Vector).
    assert "depends_on" not in config["services"]["db"]
    assert config["services"]["storage"]["depends_on"]["rest"]["condition"] == "service_started"


def published(config):
    return {(p.get("host_ip", ""), int(p["published"]), name)
            for name, s in config["services"].items() for p in s.get("ports", [])}


def test_clients_ports_are_on_the_endpoint_and_replication_on_the_private_address(rendered):
    out, _ = rendered
    config, _ = compose_config(out / "vm1", "docker-compose-master.yml")
    vip = "10.20.0.10"
    assert published(config) == {(vip, 8000, "api-gw"), (vip, 5432, "supavisor"),
                                 (vip, 6543, "supavisor"), (vip, 4000, "analytics"), (vip, 5433, "db"),
                                 ("10.20.0.11", 5433, "db"), ("10.20.0.11", 5432, "db")}


def test_without_replicas_and_endpoint_the_stack_publishes_on_every_address(tmp_path):
    res = render(tmp_path, "--limit", "vm1", "-e", '{"cluster_endpoint_address": "", "cluster_replica_group": "none"}')
    assert res.returncode == 0, res.stdout[-3000:]
    config, _ = compose_config(tmp_path / "vm1", "docker-compose-master.yml")
    # Logs off (the default): no Logflare, so nothing on 4000.
    assert published(config) == {("", 8000, "api-gw"), ("", 5432, "supavisor"),
                                 ("", 6543, "supavisor"), ("10.20.0.11", 5433, "db")}


def test_replicas_without_an_endpoint_are_refused(tmp_path):
    res = render(tmp_path, "-e", '{"cluster_endpoint_address": ""}')
    assert res.returncode != 0
    assert "cluster_endpoint_address is not set: with replicas in the inventory" in res.stdout
    assert list(tmp_path.iterdir()) == [], "something was written"


def test_the_database_is_defined_alike_on_every_host_so_a_promotion_recreates_nothing(rendered):
    out, _ = rendered
    primary, _ = compose_config(out / "vm1", "docker-compose-master.yml")
    standby, _ = compose_config(out / "vm2", "docker-compose-master.yml")
    merged, _ = merged_replica(out)
    # Only the host's own address and (here) the project directory differ.
    def db(config):
        return json.dumps(config["services"]["db"], sort_keys=True).replace("10.20.0.12", "10.20.0.11").replace(
            str(out / "vm2"), str(out / "vm1"))
    assert db(standby) == db(primary)
    assert db(merged) == db(primary)
    assert set(standby["services"]) == SERVICES | {"analytics", "vector"}


def test_every_variable_the_compose_files_use_has_a_value(rendered):
    out, _ = rendered
    for host, name in [("vm1", "docker-compose-master.yml"), ("vm2", "docker-compose-replica.yml"),
                       ("vm2", "docker-compose-master.yml")]:
        # ${NAME:-default} is optional by its own syntax; every plain ${NAME} must be set.
        used = set(re.findall(r"\$\{([A-Z0-9_]+)\}", (out / host / name).read_text()))
        env = dotenv(out / host / ".env")
        assert used and used <= set(env), f"{host}: unset {sorted(used - set(env))}"
        empty = {v for v in used if not env[v]} - {"ADDITIONAL_REDIRECT_URLS"}  # empty by choice upstream too
        assert not empty, f"{host}: empty {sorted(empty)}"


def test_the_gateway_holds_the_two_keys_derived_from_jwt_secret(rendered):
    out, _ = rendered
    env = dotenv(out / "vm1" / ".env")
    gateway = (out / "vm1/volumes/api/envoy/lds.yaml").read_text()
    for role, name in (("anon", "ANON_KEY"), ("service_role", "SERVICE_ROLE_KEY")):
        token = env[name]
        assert openssl_verifies(token, env["JWT_SECRET"])
        c = claims(token)
        assert c["role"] == role and c["iss"] == "supabase" and c["exp"] - c["iat"] == 5 * 365 * 86400
        assert f'"{token}"' in gateway, f"the gateway does not hold {name}"


def test_secrets_have_upstream_sizes_and_files_holding_them_are_private(rendered):
    out, _ = rendered
    env = dotenv(out / "vm1" / ".env")
    assert len(env["JWT_SECRET"]) >= 32 and len(env["VAULT_ENC_KEY"]) == 32
    assert re.fullmatch(r"[0-9a-f]{32}", env["VAULT_ENC_KEY"]) and len(env["SECRET_KEY_BASE"]) == 64
    assert len(env["LOGFLARE_PUBLIC_ACCESS_TOKEN"]) >= 24 and env["LOGFLARE_PUBLIC_ACCESS_TOKEN"] != env[
        "LOGFLARE_PRIVATE_ACCESS_TOKEN"]
    for path in [out / "vm1/.env", out / "vm2/.env", out / "secrets/supabase-secrets.yml"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert dotenv(out / "vm2" / ".env")["LOGFLARE_PUBLIC_ACCESS_TOKEN"] == env["LOGFLARE_PUBLIC_ACCESS_TOKEN"]


def test_a_re_run_reuses_every_secret_and_changes_nothing(rendered):
    out, _ = rendered
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = render(out, "-e", "cluster_logs=true")
    assert res.returncode == 0, res.stdout[-3000:]
    assert re.search(r"vm1\s+: ok=\d+\s+changed=0", res.stdout) and re.search(r"vm2\s+: ok=\d+\s+changed=0", res.stdout)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def merged_replica(out, services=("db", "monitor", "vector")):
    project = out / "vm2"
    res = subprocess.run(["docker", "compose", "--project-directory", str(project),
                          "-f", str(project / "docker-compose-master.yml"), "-f", str(project / "docker-compose-replica.yml"),
                          "config", "--format", "json", *services],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout), res.stderr


def test_the_replica_runs_its_database_monitor_and_vector(rendered):
    out, _ = rendered
    config, warnings = merged_replica(out)
    assert {"db", "monitor", "vector"} <= set(config["services"]) and warnings.strip() == ""
    assert published({"services": {"db": config["services"]["db"]}}) == {
        ("10.20.0.12", 5432, "db"), ("10.20.0.12", 5433, "db"), ("10.20.0.10", 5433, "db")}
    assert [v["source"] for v in config["services"]["vector"]["volumes"]][0].endswith("volumes/logs/vector-replica.yml")
    vector = (out / "vm2/volumes/logs/vector-replica.yml").read_text()
    assert "http://10.20.0.10:4000/api/logs?source_name=postgres.logs" in vector
    assert "pg_is_in_recovery()" in config["services"]["monitor"]["environment"]["HEALTH_SQL"]


def test_without_logs_the_replica_runs_its_database_and_monitor_only(tmp_path):
    res = render(tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
    config, warnings = merged_replica(tmp_path, ("db", "monitor"))
    assert set(config["services"]) == {"db", "monitor"} and warnings.strip() == ""
    assert not (tmp_path / "vm2/volumes/logs/vector-replica.yml").exists()
    assert "vector" not in (tmp_path / "vm2/docker-compose-replica.yml").read_text()


DEMO_JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
            + base64.urlsafe_b64encode(b'{"role":"anon","iss":"supabase-demo","iat":1641769200}').rstrip(b"=").decode()
            + ".c2lnbmF0dXJl")


@pytest.mark.parametrize("secrets, names", [
    ({"JWT_SECRET": "your-super-secret-jwt-token-with-at-least-32-characters-long"}, "JWT_SECRET"),
    ({"VAULT_ENC_KEY": "your-32-character-encryption-key"}, "VAULT_ENC_KEY"),
    ({"DASHBOARD_PASSWORD": "this_password_is_insecure_and_should_be_updated"}, "DASHBOARD_PASSWORD"),
    ({"ANON_KEY": DEMO_JWT}, "ANON_KEY"),
    ({"cluster_postgres_password": "your-super-secret-and-long-postgres-password"}, "cluster_postgres_password"),
])
def test_demo_values_are_refused_before_anything_is_written(tmp_path, secrets, names):
    extra = secrets if names.startswith("cluster_") else {"cluster_supabase_secrets": secrets}
    res = render(tmp_path, "-e", json.dumps(extra))
    assert res.returncode != 0
    assert f"These secrets hold a public demo value of the upstream .env.example or a demo JWT (iss supabase-demo): {names}" in res.stdout
    assert list(tmp_path.iterdir()) == [], "something was written"
    assert list(secrets.values())[0] not in res.stdout + res.stderr


def test_with_a_vault_password_the_secrets_file_is_encrypted_and_still_reused(tmp_path):
    vault_pass = tmp_path / "vault-pass"
    vault_pass.write_text("render-test-vault-password\n")
    vault_pass.chmod(0o600)
    out = tmp_path / "out"
    args = ["-e", f"cluster_secrets_vault_password_file={vault_pass}", "--vault-password-file", str(vault_pass)]
    first = render(out, *args)
    assert first.returncode == 0, first.stdout[-3000:]
    stored = (out / "secrets/supabase-secrets.yml").read_text()
    assert stored.startswith("$ANSIBLE_VAULT;1.2;AES256;selfhost")
    env = dotenv(out / "vm1" / ".env")
    assert env["JWT_SECRET"] not in stored and env["ANON_KEY"] not in stored
    second = render(out, *args)
    assert second.returncode == 0, second.stdout[-3000:]
    assert (out / "secrets/supabase-secrets.yml").read_text() == stored
    assert dotenv(out / "vm1" / ".env") == env
    # Without the vault password the run stops instead of generating new secrets.
    third = render(out)
    assert third.returncode != 0 and (out / "secrets/supabase-secrets.yml").read_text() == stored


def test_rest_and_studio_keep_the_release_s_row_limit(rendered):
    out, _ = rendered
    config, _ = compose_config(out / "vm1", "docker-compose-master.yml")
    for service in ("rest", "studio"):
        env = config["services"][service]["environment"]
        assert env["PGRST_DB_MAX_ROWS"] == "1000" and env["PGRST_DB_EXTRA_SEARCH_PATH"] == "public", service


def test_public_urls_are_the_endpoint_on_every_host(rendered):
    """Auth e-mail links and storage's public URLs must point where the gateway listens (the
    endpoint) and must not change with a switchover."""
    out, _ = rendered
    for host in ("vm1", "vm2"):
        env = dotenv(out / host / ".env")
        assert env["SUPABASE_PUBLIC_URL"] == "http://10.20.0.10:8000", host
        # Auth's own address, as upstream's since 0.7.0.
        assert env["API_EXTERNAL_URL"] == "http://10.20.0.10:8000/auth/v1", host


@pytest.mark.parametrize("extra, image", [
    ({}, RELEASE["cluster_image_db"]),
    ({"cluster_postgres_major": 15}, RELEASE["cluster_image_db_15"]),
    ({"cluster_postgres_major": 15, "cluster_image_db": "example/postgres:15.6.1.100"}, "example/postgres:15.6.1.100"),
    ({"cluster_postgres_major": 15, "cluster_image_db": "example/postgres:latest"}, RELEASE["cluster_image_db_15"]),
    ({"cluster_image_db": "example/postgres:latest"}, "example/postgres:latest"),
])
def test_the_database_image_is_the_one_for_the_data_s_major_version(tmp_path, extra, image):
    """A new cluster gets cluster_image_db (17); data of PostgreSQL 15 (what discovery finds)
    keeps cluster_image_db_15, unless cluster_image_db itself names 15 (an image whose tag
    names no version is taken for the pin's, 17)."""
    res = render(tmp_path, "--limit", "vm1", "-e", json.dumps({"cluster_endpoint_address": "",
                                                              "cluster_replica_group": "none", **extra}))
    assert res.returncode == 0, res.stdout[-3000:]
    config, _ = compose_config(tmp_path / "vm1", "docker-compose-master.yml")
    assert config["services"]["db"]["image"] == image
