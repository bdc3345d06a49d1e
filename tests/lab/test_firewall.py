"""The host firewall (roles/firewall, 1 master + 1 replica, inventories/lab).

Probes come from three places on the lab network: the replica VM, the lab
machine (the network's gateway, which the lab inventory lists in
cluster_client_cidrs) and an outsider: a throwaway container with an address
of its own that the inventory names nowhere.  A dropped probe times out; a
port nobody listens on answers "refused" at once, so the two are told apart.

The test that turns the firewall off and on again also writes the measured
list of ports open on each VM, before and after, to .lab/bench/ports.md."""

import json
import socket
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from conftest import ADDRESSES, ENDPOINT, PREFIX, ROOT, ansible_playbook, vm_host

pytestmark = [pytest.mark.default, pytest.mark.usefixtures("lab_up")]

REPLICATION_PORT = 5433
ANALYTICS_PORT = 4000
INVENTORY_ARG = f"--inventory={ROOT / 'inventories' / 'lab'}"

PROBE = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def probe(target):
    host, port = target
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        return "open"
    except socket.timeout:
        return "filtered"
    except ConnectionRefusedError:
        return "closed"
    finally:
        s.close()
targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(len(targets)) as pool:
    print(json.dumps(list(pool.map(probe, [tuple(t) for t in targets]))))
"""


def vm_image():
    out = subprocess.run(["docker", "inspect", "--format", "{{.Config.Image}}", f"{PREFIX}-vm1"],
                         capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


def probe_from(where, targets):
    """{(host, port): open | closed | filtered} as seen from where (outsider, lab, or a VM)."""
    args = [json.dumps(targets)]
    if where == "lab":
        with ThreadPoolExecutor(len(targets)) as pool:
            return dict(zip(map(tuple, targets), pool.map(local_probe, targets)))
    if where == "outsider":
        name = f"{PREFIX}-outsider-{uuid.uuid4().hex[:6]}"
        cmd = ["docker", "run", "--rm", "--name", name, "--network", PREFIX, "--entrypoint", "python3",
               vm_image(), "-c", PROBE, *args]
    else:
        cmd = ["docker", "exec", f"{PREFIX}-{where}", "python3", "-c", PROBE, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return dict(zip(map(tuple, targets), json.loads(out.stdout)))


def local_probe(target):
    try:
        with socket.create_connection(tuple(target), timeout=2):
            return "open"
    except socket.timeout:
        return "filtered"
    except ConnectionRefusedError:
        return "closed"


def listening(vm):
    """TCP ports something listens on in the VM (its own network namespace)."""
    out = vm_host(vm).check_output("ss -Hltn")
    ports = {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if line.strip()}
    return sorted(ports)


def table_loaded(vm):
    return vm_host(vm).run("nft list table inet selfhost_supabase").succeeded


def firewall_run(*extra):
    res = ansible_playbook(INVENTORY_ARG, "site.yml", "--tags", "firewall", *extra)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return res


def changed(res):
    return sum(int(part.split("changed=")[1].split()[0]) for part in res.stdout.splitlines()
               if "changed=" in part and "ok=" in part)


def test_the_replication_port_answers_the_database_hosts_and_clients_only():
    targets = [[ADDRESSES["vm1"], REPLICATION_PORT], [ENDPOINT, REPLICATION_PORT]]
    assert set(probe_from("outsider", targets).values()) == {"filtered"}
    assert set(probe_from("vm2", targets).values()) == {"open"}
    # The lab machine is in cluster_client_cidrs (the tests' writer connects from it).
    assert set(probe_from("lab", targets).values()) == {"open"}


def test_analytics_is_closed_to_everyone_but_the_database_hosts_by_default():
    # Logflare is not started in the lab: nothing listens, so a host that is let
    # through gets "closed" at once; everyone else's packets are dropped.
    targets = [[ADDRESSES["vm1"], ANALYTICS_PORT], [ENDPOINT, ANALYTICS_PORT]]
    assert set(probe_from("outsider", targets).values()) == {"filtered"}
    assert set(probe_from("lab", targets).values()) == {"filtered"}
    assert set(probe_from("vm2", targets).values()) <= {"open", "closed"}


def test_studio_route_is_restricted_to_the_admin_networks():
    """No cluster_admin_cidrs in the lab: the gateway's dashboard route admits no one."""
    lds = yaml.safe_load(vm_host("vm1").file("/opt/supabase/volumes/api/envoy/lds.yaml").content_string)
    manager = lds["resources"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    (dashboard,) = [r for r in manager["route_config"]["virtual_hosts"][0]["routes"] if r["name"] == "dashboard-all"]
    rules = dashboard["typed_per_filter_config"]["admin_networks"]["rbac"]["rules"]
    assert rules == {"action": "ALLOW", "policies": {}}
    # And that filter comes before the login is asked for.
    names = [f["name"] for f in manager["http_filters"]]
    assert names.index("admin_networks") < names.index("envoy.filters.http.basic_auth")


def test_firewall_off_and_on_changes_only_the_guarded_ports_and_writes_the_port_lists():
    ports = {vm: listening(vm) for vm in ("vm1", "vm2")}
    assert REPLICATION_PORT in ports["vm1"]
    targets = [[ADDRESSES[vm], p] for vm in ports for p in ports[vm]]
    targets += [[ADDRESSES[vm], p] for vm in ports for p in (REPLICATION_PORT, ANALYTICS_PORT)
                if p not in ports[vm]]
    try:
        firewall_run("-e", "cluster_firewall=false")
        assert not table_loaded("vm1") and not table_loaded("vm2")
        assert not vm_host("vm1").file("/etc/selfhost-supabase/firewall.nft").exists
        before = probe_from("outsider", targets)
    finally:
        # A flushed table (here: removed) is loaded again by the next run.
        again = firewall_run()
    assert changed(again) >= 2
    assert table_loaded("vm1") and table_loaded("vm2")
    assert changed(firewall_run()) == 0
    after = probe_from("outsider", targets)

    guarded = {REPLICATION_PORT, ANALYTICS_PORT}
    assert before[(ADDRESSES["vm1"], REPLICATION_PORT)] == "open"
    for target in map(tuple, targets):
        if target[1] in guarded:
            assert after[target] == "filtered", target
        else:
            assert after[target] == before[target], target

    lines = ["# Ports on each lab VM, probed from an address no inventory names", "",
             "| VM | listening (ss -ltn) | open to the outsider, firewall off | open to the outsider, firewall on |",
             "|---|---|---|---|"]
    for vm in ports:
        def opened(result):
            return ", ".join(str(p) for (h, p), state in sorted(result.items())
                             if h == ADDRESSES[vm] and state == "open") or "none"
        lines.append(f"| {vm} | {', '.join(map(str, ports[vm]))} | {opened(before)} | {opened(after)} |")
    bench = ROOT / ".lab" / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    (bench / "ports.md").write_text("\n".join(lines) + "\n")
