"""The rendered stack against the pinned release (tests/data/upstream_compose.yml, read
from upstream's docker/): every service's image, environment keys, healthcheck, what it
waits for, mounts and published ports, less and plus exactly the differences listed with
their reasons in tests/data/upstream_differences.yml.  A key upstream sets that is
neither rendered nor listed fails; so does a listed difference that is not one."""

import pytest
import yaml

from test_rendered_stack import RELEASE, ROOT, compose_config, render

UPSTREAM = yaml.safe_load((ROOT / "tests/data/upstream_compose.yml").read_text())
DIFFERENCES = yaml.safe_load((ROOT / "tests/data/upstream_differences.yml").read_text())
LISTED = DIFFERENCES["services"]


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """The primary's compose project as Compose reads it, with logs on and off."""
    found = {}
    for logs in (True, False):
        out = tmp_path_factory.mktemp(f"conformance-logs-{logs}")
        res = render(out, "-e", f"cluster_logs={str(logs).lower()}")
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr
        config, _ = compose_config(out / "vm1", "docker-compose-master.yml")
        # The TLS directory is under the render's folder here (cluster_tls_vm_dir on a VM).
        for service in config["services"].values():
            for volume in service.get("volumes", []):
                if volume["target"].startswith(str(out)):
                    volume["target"] = "cluster_tls_vm_dir"
        found[logs] = config
    return found


def shape(service):
    """What the table holds of a rendered service."""
    health = service.get("healthcheck") or {}
    return {
        "image": service.get("image"),
        "environment": set(service.get("environment") or {}),
        "healthcheck": health.get("test") if not health.get("disable") else None,
        "depends_on": set(service.get("depends_on") or {}),
        "mounts": {volume["target"] for volume in service.get("volumes", [])},
        "ports": {int(port["target"]) for port in service.get("ports", [])},
    }


def want(name):
    spec = UPSTREAM["services"][name]
    shaped = {key: set(spec[key]) for key in ("environment", "depends_on", "mounts", "ports")}
    shaped.update(image=spec["image"], healthcheck=spec["healthcheck"])
    if name == "studio":  # with logs on, docker-compose.logs.yml adds to the base studio
        shaped["environment"] |= set(UPSTREAM["logs_studio"]["environment"])
        shaped["depends_on"] |= set(UPSTREAM["logs_studio"]["depends_on"])
    return shaped


@pytest.mark.parametrize("name", sorted(UPSTREAM["services"]))
def test_each_service_is_the_release_s_but_for_its_listed_differences(stacks, name):
    listed = LISTED.get(name, {})
    ours = shape(stacks[True]["services"][listed.get("rendered_as", name)])
    spec = want(name)
    for key in ("environment", "depends_on", "mounts", "ports"):
        absent, added = set(listed.get(f"{key}_absent", {})), set(listed.get(f"{key}_added", {}))
        assert spec[key] - ours[key] == absent, f"{name}: {key} upstream sets and the stack lacks, unlisted or stale"
        assert ours[key] - spec[key] == added, f"{name}: {key} the stack adds, unlisted or stale"
    for key in ("image", "healthcheck"):
        if key in listed:
            assert ours[key] != spec[key], f"{name}: the listed {key} difference is not one"
        else:
            assert ours[key] == spec[key], f"{name}: its {key} differs from the release's, unlisted"


def test_every_difference_has_its_reason():
    for name, listed in LISTED.items():
        for key, value in listed.items():
            if key == "rendered_as":
                continue
            reasons = value.values() if isinstance(value, dict) else [value]
            assert all(isinstance(r, str) and len(r) > 20 for r in reasons), (name, key)


def test_the_stack_has_no_service_but_the_release_s_and_the_listed_ones(stacks):
    for logs, config in stacks.items():
        names = {LISTED.get(n, {}).get("rendered_as", n) for n in UPSTREAM["services"]}
        if not logs:
            names -= {"analytics", "vector"}
        extra = set(config["services"]) - names
        assert extra == set(DIFFERENCES["services_added"]) & set(config["services"]), logs


def test_without_logs_there_is_no_logflare_nor_vector_and_nothing_waits_for_them(stacks):
    config = stacks[False]
    assert not {"analytics", "vector"} & set(config["services"])
    for name, service in config["services"].items():
        assert not {"analytics", "vector"} & set(service.get("depends_on") or {}), name
    studio = config["services"]["studio"]["environment"]
    assert studio["ENABLED_FEATURES_LOGS_ALL"] == "false" and "LOGFLARE_URL" not in studio
    assert stacks[True]["services"]["studio"]["environment"]["ENABLED_FEATURES_LOGS_ALL"] == "true"


def test_the_pin_names_the_release_of_the_table():
    assert RELEASE["cluster_supabase_release"].startswith(UPSTREAM["release"] + " ")
    assert RELEASE["cluster_image_db_15"] == UPSTREAM["pg15_image"]
