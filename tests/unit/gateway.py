"""A request through the gateway configuration the collection renders, without the
gateway (neither image can run here): a model of how Envoy and Kong match a route
and apply its access rules and header changes, with the rendered Lua (Envoy's
filter, Kong's request-transformer templates and post-functions) run by LuaJIT.

The model covers what the rendered files use and no more: Envoy's prefix and path
matches in order, per-route basic auth, RBAC (any, apikey header, direct remote
address), the Lua filter, prefix rewrites and added or removed headers; Kong's
paths and exact expressions, and its plugins in Kong's priority order (cors,
key-auth, basic-auth, ip-restriction, acl, request-transformer,
request-termination, post-function)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import subprocess
from dataclasses import dataclass, field
from urllib.parse import parse_qsl


@dataclass
class Outcome:
    status: int | None = None  # None: passed on to the service
    host: str = ""
    port: int = 0
    path: str = ""
    headers: dict = field(default_factory=dict)
    timeout: float | None = None
    idle_timeout: float | None = None


def lua_string(value):
    """A Python string as a Lua string literal (decimal escapes for anything unusual)."""
    out = []
    for byte in value.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def lua_table(mapping):
    return "{" + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in mapping.items()) + "}"


def luajit(program):
    res = subprocess.run(["luajit", "-"], input=program, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, f"LuaJIT failed: {res.stderr}"
    return res.stdout


# What an Envoy Lua filter sees of a request: its headers (:path among them), the
# route's name, respond().  Prints either the response or the headers it leaves.
ENVOY_HARNESS = """
local store = %(headers)s
local route = %(route)s
local responded = nil
local headers = {}
function headers:get(name) return store[string.lower(name)] end
function headers:add(name, value) name = string.lower(name); if store[name] == nil then store[name] = value end end
function headers:replace(name, value) store[string.lower(name)] = value end
function headers:remove(name) store[string.lower(name)] = nil end
local handle = {}
function handle:headers() return headers end
function handle:streamInfo() return {routeName = function() return route end} end
function handle:respond(h, body) responded = h[":status"] end
local chunk = assert(loadstring(%(code)s))
chunk()
envoy_on_request(handle)
if responded then print("status\\t" .. responded) else
  for name, value in pairs(store) do print("header\\t" .. name .. "\\t" .. value) end
end
"""


def run_envoy_lua(code, route, headers):
    out = luajit(ENVOY_HARNESS % {"headers": lua_table(headers), "route": lua_string(route), "code": lua_string(code)})
    result = {}
    for line in out.splitlines():
        kind, *rest = line.split("\t")
        if kind == "status":
            return int(rest[0]), None
        result[rest[0]] = rest[1]
    return None, result


def _split(path):
    return path.split("?", 1) if "?" in path else (path, None)


def _matches_header(principal, headers):
    spec = principal["header"]
    return headers.get(spec["name"].lower()) == spec["string_match"]["exact"]


def _principal(principal, headers, remote):
    if principal.get("any"):
        return True
    if "header" in principal:
        return _matches_header(principal, headers)
    if "direct_remote_ip" in principal:
        net = principal["direct_remote_ip"]
        return ipaddress.ip_address(remote) in ipaddress.ip_network(f"{net['address_prefix']}/{net['prefix_len']}")
    raise AssertionError(f"principal the model does not know: {principal}")


def _rbac_allows(rules, headers, remote):
    matched = any(any(_principal(p, headers, remote) for p in policy["principals"])
                  for policy in (rules.get("policies") or {}).values())
    return matched if rules["action"] == "ALLOW" else not matched


def _basic_auth_ok(users, authorization):
    if not authorization or not authorization.startswith("Basic "):
        return False
    user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
    digest = "{SHA}" + base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{digest}" in users.splitlines()


def envoy_filters(listener):
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return manager, {f["name"]: f.get("typed_config") for f in manager["http_filters"]}


def envoy(lds, cds, path, headers=None, remote="203.0.113.9", listener="http"):
    """Envoy's answer to a GET of path with headers from remote: the route, then the
    HTTP filters in their order, each with the route's own configuration if it has one."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    listeners = {r["name"]: r for r in lds["resources"]}
    manager, _ = envoy_filters(listeners[listener])
    host = manager["route_config"]["virtual_hosts"][0]
    bare, _ = _split(path)
    route = next(r for r in host["routes"]
                 if ("path" in r["match"] and bare == r["match"]["path"])
                 or ("prefix" in r["match"] and bare.startswith(r["match"]["prefix"])))
    per_route = route.get("typed_per_filter_config", {})
    after = dict(headers, **{":path": path})
    for http_filter in manager["http_filters"]:
        kind = http_filter["typed_config"]["@type"].rsplit(".", 1)[-1]
        own = per_route.get(http_filter["name"], {})
        if own.get("disabled"):
            continue
        if kind == "BasicAuth":
            if not _basic_auth_ok(http_filter["typed_config"]["users"]["inline_string"], after.get("authorization")):
                return Outcome(status=401)
        elif kind == "Lua":
            status, after = run_envoy_lua(http_filter["typed_config"]["inline_code"], route["name"], after)
            if status:
                return Outcome(status=status)
        elif kind == "RBAC":
            rules = own.get("rbac", http_filter["typed_config"])["rules"]
            if not _rbac_allows(rules, after, remote):
                return Outcome(status=403)
        elif kind not in ("Cors", "Router"):
            raise AssertionError(f"an HTTP filter the model does not know: {kind}")
    path = after.pop(":path")
    action = route["route"]
    match = route["match"].get("prefix") or route["match"]["path"]
    path = action.get("prefix_rewrite", match) + path[len(match):]
    for name in route.get("request_headers_to_remove", []):
        after.pop(name.lower(), None)
    for entry in host.get("request_headers_to_add", []) + route.get("request_headers_to_add", []):
        after.setdefault(entry["header"]["key"].lower(), entry["header"]["value"])
    cluster = next(c for c in cds["resources"] if c["name"] == action["cluster"])
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    if "host_rewrite_literal" in action:
        after["host"] = action["host_rewrite_literal"]
    seconds = lambda v: float(v.rstrip("s")) if v else None  # noqa: E731
    return Outcome(host=address["address"], port=address["port_value"], path=path, headers=after,
                   timeout=seconds(action.get("timeout")), idle_timeout=seconds(action.get("idle_timeout")))


# Kong's template expressions and post-functions, in the environment Kong gives them.
KONG_HARNESS = """
local store = %(headers)s
local query = %(query)s
-- Templates read the request as it came, whatever the plugin changed before.
local original, original_query = {}, {}
for k, v in pairs(store) do original[k] = v end
for k, v in pairs(query) do original_query[k] = v end
local function expression(source)
  local f = assert(loadstring("return " .. source))
  -- What Kong's sandbox offers besides the request: type (for repeated headers).
  setfenv(f, {headers = original, query_params = original_query, type = type})
  local value = f()
  if not value then return "" end
  return tostring(value)
end
kong = {request = {get_header = function(name) return store[string.lower(name)] end},
        service = {request = {clear_header = function(name) store[string.lower(name)] = nil end}}}
%(body)s
for name, value in pairs(store) do print("header\\t" .. name .. "\\t" .. value) end
for name, value in pairs(query) do print("query\\t" .. name .. "\\t" .. value) end
"""


def _kong_value(template):
    """A request-transformer value: $(lua) or a literal."""
    inner = re.fullmatch(r"\$\((.*)\)", template, re.S)
    return f"expression({lua_string(inner.group(1))})" if inner else lua_string(template)


def _kong_route(services, bare):
    exact = [(s, r) for s in services for r in s["routes"] if "expression" in r
             and re.fullmatch(r'http\.path == "(.*)"', r["expression"]).group(1) == bare]
    if exact:
        return exact[0][0], exact[0][1], bare
    candidates = [(len(p), s, r, p) for s in services for r in s["routes"] for p in r.get("paths", [])
                  if bare.startswith(p)]
    _, service, route, prefix = max(candidates, key=lambda c: c[0])
    return service, route, prefix


def kong(config, path, headers=None, remote="203.0.113.9"):
    """Kong's answer to a GET of path with headers from remote."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    bare, query_string = _split(path)
    query = dict(parse_qsl(query_string or "", keep_blank_values=True))
    service, route, prefix = _kong_route(config["services"], bare)
    plugins = {p["name"]: p.get("config", {}) for p in service.get("plugins", [])}
    consumer = None
    if "key-auth" in plugins:
        key = headers.get("apikey") or query.get("apikey")
        if not key:
            return Outcome(status=401)
        consumer = next((c["username"] for c in config["consumers"]
                         for cred in c.get("keyauth_credentials", []) if cred["key"] == key), None)
        if consumer is None:
            return Outcome(status=401)
    if "basic-auth" in plugins:
        creds = {(b["username"], b["password"]) for b in config["basicauth_credentials"]}
        auth = headers.get("authorization", "")
        if not auth.startswith("Basic ") or tuple(base64.b64decode(auth[6:]).decode().partition(":")[::2]) not in creds:
            return Outcome(status=401)
        if plugins["basic-auth"].get("hide_credentials"):
            headers.pop("authorization")
    if "ip-restriction" in plugins:
        rules = plugins["ip-restriction"]
        inside = lambda nets: any(ipaddress.ip_address(remote) in ipaddress.ip_network(n) for n in nets)  # noqa: E731
        if ("allow" in rules and not inside(rules["allow"])) or inside(rules.get("deny", [])):
            return Outcome(status=403)
    if "acl" in plugins:
        groups = {a["group"] for a in config["acls"] if a["consumer"] == consumer}
        if not groups & set(plugins["acl"]["allow"]):
            return Outcome(status=403)
    if "request-termination" in plugins:
        return Outcome(status=plugins["request-termination"]["status_code"])
    body = []
    transformer = plugins.get("request-transformer", {})
    # Kong's order: remove, rename, replace, add, append; each value from the request as it came.
    for name in transformer.get("remove", {}).get("headers", []):
        body.append(f"store[{lua_string(name.lower())}] = nil")
    for kind, only_if in (("replace", "~= nil"), ("add", "== nil")):
        for section, table in (("headers", "store"), ("querystring", "query")):
            for entry in transformer.get(kind, {}).get(section, []):
                name, _, value = entry.partition(":")
                key = lua_string(name.lower() if section == "headers" else name)
                body.append(f"if {table}[{key}] {only_if} then {table}[{key}] = {_kong_value(value)} end")
    for snippet in plugins.get("post-function", {}).get("access", []):
        body.append(snippet)
    out = luajit(KONG_HARNESS % {"headers": lua_table(headers), "query": lua_table(query), "body": "\n".join(body)})
    after, query_after = {}, {}
    for line in out.splitlines():
        kind, name, value = line.split("\t", 2)
        (after if kind == "header" else query_after)[name] = value
    url = re.fullmatch(r"http://([^:/]+):(\d+)(/.*)", service["url"])
    rest = bare[len(prefix):] if route.get("strip_path") else bare
    target = url.group(3).rstrip("/") + "/" + rest.lstrip("/") if rest else url.group(3)
    if query_string is not None:
        order = list(query) + sorted(set(query_after) - set(query))
        target += "?" + "&".join(f"{k}={query_after[k]}" for k in order if k in query_after)
    read = service.get("read_timeout")
    return Outcome(host=url.group(1), port=int(url.group(2)), path=target, headers=after,
                   idle_timeout=read / 1000 if read else None)
