"""Tags and check mode on a deployed lab: partial runs touch only their side."""

import re

import pytest

from conftest import ansible_playbook, vm_state

pytestmark = [pytest.mark.default, pytest.mark.usefixtures("lab_up")]


def recap(output, host):
    m = re.search(rf"^{host}\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M)
    assert m, output[-3000:]
    return dict(zip(["ok", "changed", "unreachable", "failed"], map(int, m.groups())))


@pytest.mark.parametrize("tag, untouched", [("replica", "vm1"), ("master", "vm2")])
def test_a_tagged_run_leaves_the_other_side_alone(tag, untouched):
    before = vm_state(untouched)
    res = ansible_playbook("site.yml", "-i", "inventories/lab", "--tags", tag)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    after = vm_state(untouched)
    assert after == before, f"{untouched} changed during --tags {tag}"
    for host in ("vm1", "vm2"):
        assert recap(res.stdout, host)["changed"] == 0


def test_check_mode_on_a_deployed_lab_predicts_no_change():
    before = vm_state("vm1"), vm_state("vm2")
    res = ansible_playbook("site.yml", "-i", "inventories/lab", "--check")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert recap(res.stdout, "vm1")["changed"] == 0
    assert recap(res.stdout, "vm2")["changed"] == 0
    assert (vm_state("vm1"), vm_state("vm2")) == before
