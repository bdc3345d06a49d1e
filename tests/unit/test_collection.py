"""The collection builds, installs next to its declared dependencies alone, and
its roles, playbooks, modules and filters work by FQCN from there; the tarball
carries nothing but the collection."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ansible_collections
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*cmd, env=None, cwd=None):
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))}:\n{res.stdout}\n{res.stderr}"
    return res.stdout


GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
POSTGRES_GROUP = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]["postgres"]
# The collections the `ansible` bundle from PyPI carries (where the declared ones are taken from).
BUNDLE = next(Path(p) for p in ansible_collections.__path__ if (Path(p) / "community" / "docker").is_dir())


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The built tarball installed into an empty path that holds only the collections
    galaxy.yml declares, and an environment that sees nothing else."""
    tmp = tmp_path_factory.mktemp("collection")
    run(BIN / "ansible-galaxy", "collection", "build", "--output-path", str(tmp), str(ROOT))
    tarball = next(tmp.glob("selfhost-supabase-*.tar.gz"))
    path = tmp / "installed"
    wanted, copied = list(GALAXY["dependencies"]), set()
    while wanted:  # the declared ones and what they declare in turn
        name = wanted.pop()
        if name in copied:
            continue
        namespace, collection = name.split(".")
        shutil.copytree(BUNDLE / namespace / collection, path / "ansible_collections" / namespace / collection)
        copied.add(name)
        manifest = json.loads((BUNDLE / namespace / collection / "MANIFEST.json").read_text())
        wanted += list(manifest["collection_info"].get("dependencies") or {})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(path), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_CONFIG=str(tmp / "none.cfg"), ANSIBLE_ROLES_PATH=str(tmp / "no-roles"))
    # Without --no-deps: the install must find every dependency it declares.
    run(BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", str(path), str(tarball), env=env)
    return tmp, tarball, env


def test_the_tarball_holds_the_collection_and_nothing_else(installed, tmp_path):
    _, _, env = installed
    # A user's secrets beside an inventory in the checkout must not ship either.
    work = tmp_path / "checkout"
    shutil.copytree(ROOT, work, symlinks=True, ignore=shutil.ignore_patterns(".venv", ".lab", ".git", "__pycache__"))
    secrets = work / "inventories" / "prod" / ".secrets"
    (secrets / "tls").mkdir(parents=True)
    (secrets / "supabase-secrets.yml").write_text("JWT_SECRET: not-for-the-tarball\n")
    (secrets / "tls" / "ca.key").write_text("not-for-the-tarball\n")
    run(BIN / "ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(work), env=env)
    names = run("tar", "-tzf", str(next(tmp_path.glob("selfhost-supabase-*.tar.gz")))).split()
    assert "plugins/modules/pg_basebackup.py" in names and "roles/master/tasks/main.yml" in names
    assert "tests/sanity/ignore-2.19.txt" in names and "inventories/example/hosts.yml" in names
    stray = [n for n in names if n.startswith((".collections", ".venv", ".lab", ".git", "lab/", "bench/", "molecule/",
                                               "scripts/", "tests/lab", "tests/unit", "tests/integration",
                                               "inventories/lab"))
             or ".secrets" in n or "__pycache__" in n or n.endswith((".pyc", "Makefile"))]
    assert stray == []
    # No symbolic link ships (the checkout's .collections link points at itself).
    listing = run("tar", "-tvzf", str(next(tmp_path.glob("selfhost-supabase-*.tar.gz"))))
    assert not [line for line in listing.splitlines() if line.startswith("l")]


def test_the_secrets_directory_is_never_committable(tmp_path):
    """The secrets directory the roles create keeps itself out of git, wherever the inventory is."""
    inventory = tmp_path / "inv"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                                         "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n")
    playbook = tmp_path / "secrets.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.include_role:\n        name: selfhost.supabase.cluster\n        tasks_from: secrets.yml\n"
        "      vars:\n        cluster_postgres_password: render-test-postgres-pw-0123456789\n"
        "        cluster_replication_password: render-test-replication-pw-0123456789\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    res = subprocess.run([BIN / "ansible-playbook", "-i", str(inventory / "hosts.yml"), str(playbook)],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:]
    assert (inventory / ".secrets" / "supabase-secrets.yml").is_file()
    status = subprocess.run(["git", "-C", str(tmp_path), "status", "--porcelain", "--untracked-files=all"],
                            capture_output=True, text=True, check=True).stdout
    assert "inv/hosts.yml" in status and ".secrets" not in status


def test_ansible_doc_renders_every_module(installed):
    _, _, env = installed
    listing = json.loads(run(BIN / "ansible-doc", "-t", "module", "-l", "selfhost.supabase", "-j", env=env))
    assert "selfhost.supabase.pg_basebackup" in listing
    for module in listing:
        doc = json.loads(run(BIN / "ansible-doc", "-j", module, env=env))[module]
        assert doc["doc"]["short_description"] and doc["examples"].strip() and doc["return"]
        passwords = [o for name, o in doc["doc"]["options"].items() if name.endswith("password")]
        assert all(o["type"] == "str" for o in passwords), module
        # The modules that log in to PostgreSQL (action group postgres) take the login by its one name.
        if module.split(".")[-1] in POSTGRES_GROUP:
            assert {"login_host", "login_port", "login_user", "login_password"} <= set(doc["doc"]["options"]), module
    assert {f"selfhost.supabase.{name}" for name in POSTGRES_GROUP} <= set(listing)


def test_the_old_module_names_resolve_from_the_installed_collection(installed):
    """meta/runtime.yml redirects each old name to the module's new name, with a deprecation."""
    _, _, env = installed
    routing = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["plugin_routing"]["modules"]
    assert set(routing) == {"pg_replication_status", "pg_controldata"}
    for old, route in routing.items():
        res = subprocess.run([BIN / "ansible-doc", "-j", f"selfhost.supabase.{old}"], capture_output=True, text=True,
                             env=dict(env, ANSIBLE_DEPRECATION_WARNINGS="true"), timeout=300)
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)[f"selfhost.supabase.{old}"]["doc"]
        assert f"selfhost.supabase.{doc['module']}" == route["redirect"] and doc["module"].endswith("_info")
        said = " ".join(res.stderr.split())
        assert f"selfhost.supabase.{old} has been deprecated. Use {route['redirect']} instead" in said, said
        assert "version 1.0.0" in said


def test_roles_resolve_by_fqcn_from_the_installed_collection(installed):
    tmp, _, env = installed
    playbook = tmp / "play.yml"
    playbook.write_text(
        "- hosts: all\n  roles:\n    - selfhost.supabase.master\n"
        "- hosts: all\n  roles:\n    - selfhost.supabase.replica\n"
        "- ansible.builtin.import_playbook: selfhost.supabase.site\n")
    run(BIN / "ansible-playbook", "--syntax-check", "-i", "localhost,", str(playbook), env=env, cwd=tmp)


def test_every_task_and_playbook_resolves_with_the_declared_dependencies_alone(installed):
    """Each task file imported statically, so that every module it calls must resolve
    from the installed collection and what galaxy.yml declares (nothing else is visible)."""
    tmp, _, env = installed
    tasks = sorted(ROOT.glob("roles/*/tasks/*.yml"))
    playbook = tmp / "every_task.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n" + "".join(
        f"    - ansible.builtin.import_role:\n        name: selfhost.supabase.{t.parent.parent.name}\n"
        f"        tasks_from: {t.name}\n" for t in tasks))
    run(BIN / "ansible-playbook", "--syntax-check", "-i", "localhost,", str(playbook), env=env, cwd=tmp)
    for name in sorted(p.stem for p in (ROOT / "playbooks").glob("*.yml")):
        run(BIN / "ansible-playbook", "--syntax-check", "-i", "localhost,", f"selfhost.supabase.{name}",
            env=env, cwd=tmp)


def test_ansible_doc_renders_every_filter_and_role(installed):
    _, _, env = installed
    filters = json.loads(run(BIN / "ansible-doc", "-t", "filter", "-l", "selfhost.supabase", "-j", env=env))
    assert set(filters) >= {"selfhost.supabase.supabase_api_key", "selfhost.supabase.supabase_jwt_verifies"}
    for name in filters:
        doc = json.loads(run(BIN / "ansible-doc", "-t", "filter", "-j", name, env=env))[name]
        assert doc["doc"]["description"] and doc["examples"].strip(), name
    for role in sorted(p.name for p in (ROOT / "roles").iterdir()):
        doc = json.loads(run(BIN / "ansible-doc", "-t", "role", "-j", f"selfhost.supabase.{role}", env=env))
        # Every entry point says what it is (the backup role has no main: the cluster role depends on it
        # for its settings, and a main spec would be checked in every play).
        entry_points = doc[f"selfhost.supabase.{role}"]["entry_points"]
        assert entry_points and all(ep["short_description"] for ep in entry_points.values()), role


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
