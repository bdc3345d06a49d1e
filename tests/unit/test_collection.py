"""The collection builds, installs, and its roles and modules work by FQCN."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*cmd, env=None, cwd=None):
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))}:\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collection")
    run(BIN / "ansible-galaxy", "collection", "build", "--output-path", str(tmp), str(ROOT))
    tarball = next(tmp.glob("selfhost-supabase-*.tar.gz"))
    run(BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "--force", "-p", str(tmp / "installed"),
        str(tarball))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp / "installed"), ANSIBLE_CONFIG=str(tmp / "none.cfg"),
               ANSIBLE_ROLES_PATH=str(tmp / "no-roles"))
    return tmp, tarball, env


def test_the_tarball_holds_no_lab_secrets_or_caches(installed):
    _, tarball, _ = installed
    names = run("tar", "-tzf", str(tarball)).split()
    assert "plugins/modules/pg_basebackup.py" in names and "roles/master/tasks/main.yml" in names
    assert not [n for n in names if n.startswith((".collections", ".venv", ".lab", ".git/"))
                or ".secrets" in n or "__pycache__" in n]


def test_ansible_doc_renders_every_module(installed):
    _, _, env = installed
    listing = json.loads(run(BIN / "ansible-doc", "-t", "module", "-l", "selfhost.supabase", "-j", env=env))
    assert "selfhost.supabase.pg_basebackup" in listing
    for module in listing:
        doc = json.loads(run(BIN / "ansible-doc", "-j", module, env=env))[module]
        assert doc["doc"]["short_description"] and doc["examples"].strip() and doc["return"]
        passwords = [o for name, o in doc["doc"]["options"].items() if name.endswith("password")]
        # Every module but pg_controldata (which only reads a file) logs in somewhere.
        assert (passwords or module == "selfhost.supabase.pg_controldata") and all(
            o["type"] == "str" for o in passwords), module


def test_roles_resolve_by_fqcn_from_the_installed_collection(installed):
    tmp, _, env = installed
    playbook = tmp / "play.yml"
    playbook.write_text(
        "- hosts: all\n  roles:\n    - selfhost.supabase.master\n"
        "- hosts: all\n  roles:\n    - selfhost.supabase.replica\n"
        "- ansible.builtin.import_playbook: selfhost.supabase.site\n")
    run(BIN / "ansible-playbook", "--syntax-check", "-i", "localhost,", str(playbook), env=env, cwd=tmp)


def test_role_argument_specs_reject_a_wrong_type(installed):
    tmp, _, env = installed
    playbook = tmp / "bad.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  vars:\n    cluster_private_address: 127.0.0.1\n"
        "    cluster_replication_password: xxxxxxxxxxxxxxxxxxxx\n    cluster_postgres_password: yyyyyyyyyyyyyyyyyyyyy\n"
        "    cluster_replication_port: not-a-port\n"
        "  roles:\n    - selfhost.supabase.cluster\n")
    res = subprocess.run([BIN / "ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook)],
                         capture_output=True, text=True, env=env, cwd=tmp, timeout=120)
    assert res.returncode != 0
    assert "cluster_replication_port" in res.stdout and "int" in res.stdout
