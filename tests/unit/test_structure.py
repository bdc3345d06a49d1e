"""The house rules of the roles, checked on the files: where a thing lives is
where it is changed (docs/architecture.md, layout).  A new cross-role step
fails here until it goes through a library role or the exception is named."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
# Roles that serve other roles and name none of them.
LIBRARY = {"database", "tls_certificate", "image_user"}
# Steps of a deploy role that another role includes, each with its reason.
NAMED_EXCEPTIONS = {
    # The replica renders the full stack, kept stopped, with the master's
    # settings (master_*, the users' variables): they move with the stack's
    # next release (Envoy, the new API keys), not before.
    ("replica", "master", "stack.yml"),
    # A replica new to the inventory (--limit) is let through the master's
    # firewall with the rules a master run renders.
    ("replica", "firewall", "rules.yml"),
    # The switch steps move the endpoint address with the endpoint role's
    # own state file.
    ("switch", "endpoint", "state.yml"),
}
ROLE_FILES = [p for p in (ROOT / "roles").rglob("*") if p.is_file() and p.suffix in {".yml", ".j2"}]


def _tasks(node):
    """Every task dict in a parsed task file (blocks, rescue and always included)."""
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always"):
            yield from _tasks(node.get(key))


def _cross_role_steps():
    steps = []
    for path in (ROOT / "roles").glob("*/tasks/*.yml"):
        role = path.parts[-3]
        for task in _tasks(yaml.safe_load(path.read_text())):
            for action in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
                spec = task.get(action)
                if isinstance(spec, dict) and spec["name"].split(".")[-1] != role:
                    steps.append((role, spec["name"].split(".")[-1], spec.get("tasks_from", "main.yml")))
    return steps


def test_a_role_includes_another_only_when_it_is_a_library_role_or_a_named_exception():
    steps = _cross_role_steps()
    assert steps, "the scan found no include_role at all: it no longer reads the task files"
    wrong = [s for s in steps if s[1] not in LIBRARY and s not in NAMED_EXCEPTIONS]
    assert not wrong, f"a role includes a step of a deploy role: {wrong}"
    into_files = [s for s in steps if s[2] != "main.yml"]
    assert len(into_files) <= 5, into_files


def test_library_roles_name_none_of_their_callers():
    callers = "|".join(r for r in ROLES if r not in LIBRARY | {"cluster"})
    pattern = re.compile(rf"\b(selfhost\.supabase\.({callers})\b|({callers})_[a-z][a-z_]*)")
    for role in LIBRARY:
        for path in (ROOT / "roles" / role).rglob("*"):
            if path.is_file():
                found = pattern.findall(path.read_text())
                assert not found, f"{path.relative_to(ROOT)} names a caller: {found}"


def test_no_role_renders_or_reads_another_role_s_files():
    for path in ROLE_FILES:
        text = path.read_text()
        assert "role_path | dirname" not in text and "/roles/" not in text, path.relative_to(ROOT)


def test_no_private_variable_is_shared_between_roles():
    owners = sorted(ROLES, key=len, reverse=True)
    shared = set()
    for path in ROLE_FILES:
        role = path.relative_to(ROOT).parts[1]
        for name in re.findall(r"\b__([a-z][a-z0-9_]+)", path.read_text()):
            owner = next((r for r in owners if name.startswith(r + "_")), None)
            if owner and owner != role:
                shared.add((role, "__" + name))
    assert not shared, sorted(shared)


def test_no_lint_rule_is_silenced():
    files = ROLE_FILES + list((ROOT / "playbooks").glob("*.yml")) + [ROOT / "site.yml"]
    assert not [f.relative_to(ROOT) for f in files if "noqa" in f.read_text()]
