"""Tags and check mode on a deployed lab: partial runs touch only their side."""

import re
import shutil

import pytest
from psycopg2.extensions import parse_dsn

from conftest import PROJECT, ansible_playbook, inventory_copy, psql, secret, vm_host, vm_state, wait_until

pytestmark = [pytest.mark.default, pytest.mark.usefixtures("lab_up")]


def recap(output, host):
    m = re.search(rf"^{host}\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M)
    assert m, output[-3000:]
    return dict(zip(["ok", "changed", "unreachable", "failed"], map(int, m.groups())))


def test_a_run_tagged_master_leaves_the_replica_alone():
    before = vm_state("vm2")
    res = ansible_playbook("site.yml", "-i", "inventories/lab", "--tags", "master")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert vm_state("vm2") == before, "vm2 changed during --tags master"
    for host in ("vm1", "vm2"):
        assert recap(res.stdout, host)["changed"] == 0


def test_check_mode_on_a_deployed_lab_predicts_no_change():
    before = vm_state("vm1"), vm_state("vm2")
    res = ansible_playbook("site.yml", "-i", "inventories/lab", "--check")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert recap(res.stdout, "vm1")["changed"] == 0
    assert recap(res.stdout, "vm2")["changed"] == 0
    assert (vm_state("vm1"), vm_state("vm2")) == before


def conninfo_quote(value):
    """A libpq connection-string value, as the collection writes primary_conninfo."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def streaming(vm):
    return psql("vm1", f"SELECT state FROM pg_stat_replication WHERE application_name = '{vm}'") == "streaming"


def test_a_run_tagged_replica_converges_a_stale_standby_and_leaves_the_master_alone():
    """What a changed inventory looks like to a running standby (here: the replication
    password it was cloned with is no longer the one in the inventory): it stops streaming,
    and the next `site.yml --tags replica` rewrites its settings and reloads it, without a
    clone, and changes nothing on the master."""
    password = secret("replication_password")
    conninfo = psql("vm2", "SHOW primary_conninfo")
    stale = conninfo.replace(conninfo_quote(password), "an-old-replication-password-0123")
    # (Booleans first: a failing assert would print the secrets it compares.)
    found = stale != conninfo and parse_dsn(conninfo)["password"] == password
    assert found, "the standby's primary_conninfo does not hold the replication password"
    psql("vm2", "ALTER SYSTEM SET primary_conninfo = '{}'".format(stale.replace("'", "''")))
    psql("vm2", "SELECT pg_reload_conf()")
    wait_until(lambda: not streaming("vm2"), 60, interval=1)
    before = vm_state("vm1")
    res = ansible_playbook("site.yml", "-i", "inventories/lab", "--tags", "replica")
    assert res.returncode == 0, res.stdout[-3000:]
    assert recap(res.stdout, "vm2")["changed"] > 0 and "Cloned" not in res.stdout
    assert recap(res.stdout, "vm1")["changed"] == 0
    assert vm_state("vm1") == before, "vm1 changed during --tags replica"
    wait_until(lambda: streaming("vm2"), 60, interval=1)
    auto = vm_host("vm2").file(f"{PROJECT}/volumes/db/data/postgresql.auto.conf").content_string
    converged = (parse_dsn(psql("vm2", "SHOW primary_conninfo"))["password"] == password
                 and "an-old-replication-password-0123" not in auto)
    assert converged, "the standby's configuration still holds the old password"


def test_the_playbooks_follow_the_inventory_s_own_group_names():
    """An inventory that calls its groups db_primary and db_standby (cluster_master_group,
    cluster_replica_group): site.yml finds both hosts and changes nothing, status.yml reads both."""
    names = {"cluster_master_group": "db_primary", "cluster_replica_group": "db_standby"}

    def renamed(groups):
        groups["db_primary"] = dict(groups.pop("master"), vars=names)
        groups["db_standby"] = dict(groups.pop("replica"), vars=names)

    before = vm_state("vm1"), vm_state("vm2")
    inventory = inventory_copy(renamed)
    try:
        res = ansible_playbook("site.yml", "-i", str(inventory))
        status = ansible_playbook("playbooks/status.yml", "-i", str(inventory), timeout=180)
    finally:
        shutil.rmtree(inventory.parent)
    assert res.returncode == 0, res.stdout[-3000:]
    for host in ("vm1", "vm2"):
        counts = recap(res.stdout, host)
        assert counts["ok"] > 20 and counts["changed"] == 0, (host, counts)
    assert (vm_state("vm1"), vm_state("vm2")) == before
    assert status.returncode == 0 and "HEALTHY" in status.stdout, status.stdout[-3000:]
    assert recap(status.stdout, "vm2")["ok"] > 0
