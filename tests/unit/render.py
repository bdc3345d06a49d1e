"""Running a render playbook of tests/render/ (the roles' templates for an
inventory of hosts that are all this machine), for the tests/unit checks."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def render(name, out, *extra):
    """ansible-playbook tests/render/render_<name>.yml -i tests/render/hosts-<name>.yml, files into out."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", f"tests/render/hosts-{name}.yml",
                           f"tests/render/render_{name}.yml", "-e", f"render_dir={out}", *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def rendered_once(name, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"render-{name}")
    res = render(name, out)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr
    return out
