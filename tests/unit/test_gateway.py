"""The API gateway, route by route, for both gateways the collection renders (Envoy, the
default, and Kong 3.9 with master_gateway: kong), held to the table derived from the
pinned release's own gateway files (tests/data/upstream_gateway.yml): every route with
every kind of key a client may hold, what it is answered or where it lands and with
which headers, the new keys' translation, timeouts.  Neither gateway's image can run
here: tests/unit/gateway.py models each gateway's rules over the rendered files and
runs their Lua with LuaJIT."""

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from gateway import envoy, kong
from test_rendered_stack import compose_config, dotenv, render

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = yaml.safe_load((ROOT / "tests/data/upstream_gateway.yml").read_text())
ROUTES = UPSTREAM["routes"]
ADMIN_CIDR = "198.51.100.0/24"
ADMIN_ADDRESS = "198.51.100.7"
USER_JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"  # a signed-in user's session (opaque here)

pytestmark = pytest.mark.skipif(shutil.which("docker") is None or shutil.which("luajit") is None,
                                reason="needs the docker CLI and LuaJIT (make setup)")


@pytest.fixture(scope="module", params=["envoy", "kong"])
def gateway(request, tmp_path_factory):
    """The rendered gateway (its requests as a function), the keys, the compose service."""
    out = tmp_path_factory.mktemp(f"gateway-{request.param}")
    # The primary's files only (the gateway is the same on every host).
    res = render(out, "--limit", "vm1", "-e", f"master_gateway={request.param}",
                 "-e", f'{{"cluster_admin_cidrs": ["{ADMIN_CIDR}"]}}')
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr
    api = out / "vm1/volumes/api"
    if request.param == "envoy":
        lds = yaml.safe_load((api / "envoy/lds.yaml").read_text())
        cds = yaml.safe_load((api / "envoy/cds.yaml").read_text())
        send = lambda path, headers=None, remote="203.0.113.9": envoy(lds, cds, path, headers, remote)  # noqa: E731
    else:
        config = yaml.safe_load((api / "kong.yml").read_text())
        send = lambda path, headers=None, remote="203.0.113.9": kong(config, path, headers, remote)  # noqa: E731
    service = compose_config(out / "vm1", "docker-compose-master.yml")[0]["services"]["api-gw"]
    return request.param, send, dotenv(out / "vm1/.env"), service, out


def holders(env):
    """Each kind of key a client may send, with what it should stand for behind the gateway."""
    return {
        "anon": (env["ANON_KEY"], env["ANON_KEY"]),
        "service_role": (env["SERVICE_ROLE_KEY"], env["SERVICE_ROLE_KEY"]),
        "publishable": (env["SUPABASE_PUBLISHABLE_KEY"], env["ANON_KEY_ASYMMETRIC"]),
        "secret": (env["SUPABASE_SECRET_KEY"], env["SERVICE_ROLE_KEY_ASYMMETRIC"]),
    }


ADMITTED = {"open": {"anon", "service_role", "publishable", "secret"}, "key": {"anon", "service_role", "publishable", "secret"},
            "admin": {"service_role", "secret"}}


@pytest.mark.parametrize("route", ROUTES, ids=[r["name"] for r in ROUTES])
def test_each_route_admits_the_keys_upstream_admits_and_lands_where_upstream_sends_it(gateway, route):
    name, send, env, _, _ = gateway
    access = route["access"]
    if access == "blocked":
        for key, _ in [(None, None)] + list(holders(env).values()):
            assert send(route["request"], {"apikey": key} if key else {}).status == 403, route["name"]
        return
    if access == "dashboard":
        login = "Basic " + base64.b64encode(f"{env['DASHBOARD_USERNAME']}:{env['DASHBOARD_PASSWORD']}".encode()).decode()
        wrong = "Basic " + base64.b64encode(f"{env['DASHBOARD_USERNAME']}:not-it".encode()).decode()
        assert send(route["request"], remote=ADMIN_ADDRESS).status == 401
        assert send(route["request"], {"Authorization": wrong}, remote=ADMIN_ADDRESS).status == 401
        assert send(route["request"], {"Authorization": login}, remote="203.0.113.9").status == 403, \
            "the dashboard answers outside cluster_admin_cidrs"
        if name == "envoy":
            # Outside the admin networks the login is not even asked for (no hint when a guess is right).
            assert send(route["request"], {"Authorization": wrong}, remote="203.0.113.9").status == 403
        landed = send(route["request"], {"Authorization": login}, remote=ADMIN_ADDRESS)
        assert landed.status is None
        assert "authorization" not in landed.headers, "Studio was given the dashboard login"
        assert (landed.host, landed.port, landed.path) == tuple(route["upstream"].values())
        return
    # Without a key, and with a key no one issued.
    expected = None if access == "open" else 401
    assert send(route["request"]).status == expected, f"{name}: {route['name']} without a key"
    assert send(route["request"], {"apikey": env["ANON_KEY"][:-4] + "AAAA"}).status == expected
    for kind, (key, jwt) in holders(env).items():
        landed = send(route["request"], {"apikey": key})
        if kind not in ADMITTED[access]:
            assert landed.status == 403, f"{name}: {route['name']} admits the {kind} key"
            continue
        assert landed.status is None, f"{name}: {route['name']} refuses the {kind} key ({landed.status})"
        assert (landed.host, landed.port, landed.path) == tuple(route["upstream"].values()), route["name"]
        for header, value in route.get("headers", {}).items():
            assert landed.headers.get(header) == value, f"{route['name']}: {header}"
        if name == "envoy" and "prefix" in route:
            assert landed.headers["x-forwarded-prefix"] == route["prefix"]
        translation = route.get("keys")
        if translation == "bearer":
            assert landed.headers["authorization"] == f"Bearer {jwt}", f"{route['name']}: {kind}"
        if translation == "websocket":
            assert landed.headers["x-api-key"] == jwt, f"{route['name']}: {kind}"
        if translation == "functions":
            assert landed.headers.get("sb-api-key") == (jwt if kind in ("publishable", "secret") else None)
            assert "authorization" not in landed.headers, "functions were given an Authorization the client did not send"
        if translation == "apikey":
            assert landed.headers["apikey"] == jwt and "authorization" not in landed.headers, route["name"]
        if translation in ("bearer", "websocket", "apikey"):
            # Nothing behind the gateway sees an opaque key.
            assert not [v for v in landed.headers.values() if v.startswith("sb_")], route["name"]


@pytest.mark.parametrize("route", [r for r in ROUTES if r.get("keys") == "bearer"], ids=lambda r: r["name"])
def test_a_users_own_session_stays_the_bearer(gateway, route):
    _, send, env, _, _ = gateway
    key, jwt = holders(env)["secret" if route["access"] == "admin" else "publishable"]
    landed = send(route["request"], {"apikey": key, "Authorization": f"Bearer {USER_JWT}"})
    assert landed.status is None
    assert landed.headers["authorization"] == f"Bearer {USER_JWT}"
    # An opaque key given as the bearer is not a session: it becomes the key's JWT.
    landed = send(route["request"], {"apikey": key, "Authorization": f"Bearer {key}"})
    assert landed.headers["authorization"] == f"Bearer {jwt}"
    landed = send(route["request"], {"apikey": key, "Authorization": f"bearer {key}"})
    assert landed.headers["authorization"] == f"Bearer {jwt}", "a lowercase bearer is not a session either"


def test_a_key_in_the_query_string_counts_and_becomes_its_jwt_for_the_realtime_socket(gateway):
    """supabase-js opens Realtime's socket with ?apikey=: the socket gets the JWT, in the
    query string and in x-api-key, never the opaque key."""
    name, send, env, _, _ = gateway
    landed = send(f"/realtime/v1/websocket?apikey={env['SUPABASE_PUBLISHABLE_KEY']}&vsn=1.0.0")
    assert landed.status is None
    assert landed.headers["x-api-key"] == env["ANON_KEY_ASYMMETRIC"]
    assert landed.path == f"/socket/websocket?apikey={env['ANON_KEY_ASYMMETRIC']}&vsn=1.0.0"
    assert send("/realtime/v1/websocket?apikey=sb_publishable_nobody_issued_this&vsn=1.0.0").status == 401


@pytest.mark.parametrize("sent", [{"apikey": ""}, {}], ids=["empty-header", "empty-query"])
def test_an_empty_key_gives_storage_no_empty_bearer(gateway, sent):
    """Storage's presigned URLs carry their own signature and no key: nothing is made up."""
    _, send, _, _, _ = gateway
    landed = send("/storage/v1/object/sign/b/a.png?token=t" + ("" if sent else "&apikey="), sent)
    assert landed.status is None
    assert "authorization" not in landed.headers


def test_functions_get_the_opaque_keys_jwt_and_refuse_what_no_one_issued_or_what_conflicts(gateway):
    name, send, env, _, _ = gateway
    secret, publishable = env["SUPABASE_SECRET_KEY"], env["SUPABASE_PUBLISHABLE_KEY"]
    # An opaque key given as the bearer only.
    landed = send("/functions/v1/hello", {"Authorization": f"Bearer {secret}"})
    assert landed.headers["sb-api-key"] == env["SERVICE_ROLE_KEY_ASYMMETRIC"]
    assert landed.headers["authorization"] == f"Bearer {secret}"
    # A client cannot send its own sb-api-key.
    landed = send("/functions/v1/hello", {"sb-api-key": "forged", "apikey": env["ANON_KEY"]})
    assert "sb-api-key" not in landed.headers
    # A user's session passes as it is, beside the publishable key's JWT.
    landed = send("/functions/v1/hello", {"apikey": publishable, "Authorization": f"Bearer {USER_JWT}"})
    assert (landed.headers["sb-api-key"], landed.headers["authorization"]) == (env["ANON_KEY_ASYMMETRIC"],
                                                                               f"Bearer {USER_JWT}")
    unknown = send("/functions/v1/hello", {"apikey": "sb_secret_nobody_issued_this_one"})
    conflict = send("/functions/v1/hello", {"apikey": publishable, "Authorization": f"Bearer {secret}"})
    if name == "envoy":
        # As upstream's Envoy: refused at the gateway.
        assert (unknown.status, conflict.status) == (401, 401)
    else:
        # As upstream's Kong, which cannot refuse them and still let a keyless call through:
        # passed on without a JWT, for the runtime's verify_jwt to refuse.
        assert unknown.status is None and "sb-api-key" not in unknown.headers
        assert conflict.status is None and conflict.headers["sb-api-key"] == env["ANON_KEY_ASYMMETRIC"]


def test_timeouts_leave_the_functions_runtime_its_own(gateway):
    name, send, env, _, _ = gateway
    for route in ROUTES:
        if "upstream" not in route:
            continue
        headers = {"apikey": env["SERVICE_ROLE_KEY"]}
        if route["access"] == "dashboard":
            login = f"{env['DASHBOARD_USERNAME']}:{env['DASHBOARD_PASSWORD']}"
            headers = {"Authorization": "Basic " + base64.b64encode(login.encode()).decode()}
        landed = send(route["request"], headers, remote=ADMIN_ADDRESS)
        assert landed.idle_timeout == route.get("idle_timeout"), route["name"]
        if name == "envoy":
            assert landed.timeout == route.get("timeout", UPSTREAM["gateways"]["envoy"]["default_timeout"]), route["name"]


def test_the_gateway_service_is_the_releases_api_gw_with_its_aliases_and_healthcheck(gateway):
    name, _, _, service, out = gateway
    assert service["image"] == UPSTREAM["gateways"][name]["image"]
    assert service["healthcheck"]["test"] == UPSTREAM["gateways"][name]["healthcheck"]
    assert set(service.get("environment") or {}) == set(UPSTREAM["gateways"][name].get("environment", []))
    assert set(service["networks"]["default"]["aliases"]) == {"kong", "envoy"}
    assert [p["target"] for p in service["ports"]] == [8000]
    assert service["depends_on"]["studio"]["condition"] == "service_healthy"
    functions = compose_config(out / "vm1", "docker-compose-master.yml")[0]["services"]["functions"]
    assert functions["depends_on"]["api-gw"]["condition"] == "service_healthy"
    other = out / "vm1/volumes/api" / ("kong.yml" if name == "envoy" else "envoy")
    assert not other.exists(), "the other gateway's configuration (with the keys) was left"
    secret_file = out / "vm1/volumes/api" / ("envoy/lds.yaml" if name == "envoy" else "kong.yml")
    assert secret_file.stat().st_mode & 0o077 == 0, "the gateway's keys are readable by others"
    if name == "envoy":
        admin = yaml.safe_load((out / "vm1/volumes/api/envoy/envoy.yaml").read_text())["admin"]
        assert admin["address"]["socket_address"]["address"] == "127.0.0.1", "Envoy's admin API is open to the network"


def test_the_gateway_serves_the_releases_routes_and_no_other(gateway):
    """No route beyond the table's (Logflare's above all), and none that an earlier one
    shadows (Envoy takes the first match)."""
    name, _, _, _, out = gateway
    if name == "envoy":
        lds = yaml.safe_load((out / "vm1/volumes/api/envoy/lds.yaml").read_text())
        manager = lds["resources"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        routes = [(r["name"], r["match"].get("prefix") or r["match"]["path"], "path" in r["match"])
                  for r in manager["route_config"]["virtual_hosts"][0]["routes"]]
        for i, (route, match, _) in enumerate(routes):
            earlier = [r for r, m, exact in routes[:i] if match.startswith(m) and not exact]
            assert not earlier, f"{route} is shadowed by {earlier}"
    else:
        config = yaml.safe_load((out / "vm1/volumes/api/kong.yml").read_text())
        routes = [(r["name"],) for s in config["services"] for r in s["routes"]]
    assert [r[0] for r in routes] == [r["name"] for r in ROUTES]
    assert "analytics" not in (out / "vm1/volumes/api" / ("envoy/cds.yaml" if name == "envoy" else "kong.yml")).read_text()


def test_a_dashboard_user_name_with_a_colon_is_refused_before_anything_is_written(tmp_path):
    res = render(tmp_path, "-e", '{"cluster_supabase_secrets": {"DASHBOARD_USERNAME": "ops:team"}}')
    assert res.returncode != 0
    assert "DASHBOARD_USERNAME holds a colon (:)" in res.stdout
    assert list(tmp_path.iterdir()) == [], "something was written"


def test_an_unknown_gateway_is_refused_before_anything_is_written(tmp_path):
    res = render(tmp_path, "-e", "master_gateway=traefik")
    assert res.returncode != 0
    assert "master_gateway is 'traefik': set it to envoy" in res.stdout
    assert list(tmp_path.iterdir()) == [], "something was written"



@pytest.mark.parametrize("name", ["envoy", "kong"])
def test_a_dashboard_login_beyond_ascii_is_written_so_libyaml_reads_it_back(tmp_path, name):
    """Both gateways read their configuration with libyaml, which refuses the JSON escapes of
    characters beyond the BMP (an emoji): the login is written as UTF-8."""
    user, password = "ops\u00e9quipe", "p\u00e4ss \U0001F511 \"q\" \\ #1"
    res = render(tmp_path, "--limit", "vm1", "-e", f"master_gateway={name}", "-e", json.dumps(
        {"cluster_supabase_secrets": {"DASHBOARD_USERNAME": user, "DASHBOARD_PASSWORD": password}}))
    assert res.returncode == 0, res.stdout[-3000:]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if name == "kong":
        config = yaml.load((tmp_path / "vm1/volumes/api/kong.yml").read_text(), Loader=loader)
        assert config["basicauth_credentials"][0] == {"consumer": "DASHBOARD", "username": user, "password": password}
    else:
        lds = yaml.load((tmp_path / "vm1/volumes/api/envoy/lds.yaml").read_text(), Loader=loader)
        (login,) = [f for f in lds["resources"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
                    if f["name"] == "envoy.filters.http.basic_auth"]
        digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
        assert login["typed_config"]["users"]["inline_string"] == f"{user}:{{SHA}}{digest}"
