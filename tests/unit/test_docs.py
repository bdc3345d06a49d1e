"""The front door: docs/variables.md is what the roles' argument specs give
(scripts/varref.py) and shows no secret, every default a role defines is in its
argument spec and the other way round, one version in one place (galaxy.yml,
the changelog's newest release, no plugin from a later one, none in the README),
and the changelog in antsibull-changelog's layout."""

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "varref.py"
DOC = ROOT / "docs" / "variables.md"
CHANGELOGS = ROOT / "changelogs"

_spec = importlib.util.spec_from_file_location("varref", SCRIPT)
varref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(varref)

ROLES = varref.load_roles(ROOT / "roles")
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())


def run_varref(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=120)


# ------------------------------------------------------- docs/variables.md

def test_variables_md_is_what_the_specs_give():
    parts = varref.render(ROOT / "roles")
    current = DOC.read_text(encoding="utf-8")
    assert current == varref.document(parts), (
        f"docs/variables.md is out of date for: {', '.join(varref.drifted(parts, current))}; "
        "run `python3 scripts/varref.py`")


def test_check_mode_passes_on_the_checkout():
    res = run_varref("--check")
    assert res.returncode == 0, res.stderr


def test_a_spec_changed_without_regenerating_fails_the_check(tmp_path):
    """A copy of the roles whose replica spec says something new: --check names the
    replica role (and no other), exits 1, and passes once the file is regenerated."""
    roles = tmp_path / "roles"
    shutil.copytree(ROOT / "roles", roles)
    doc = tmp_path / "variables.md"
    shutil.copy(DOC, doc)
    assert run_varref("--check", "--roles", roles, "--output", doc).returncode == 0  # the copy is no different

    spec_path = roles / "replica" / "meta" / "argument_specs.yml"
    spec = yaml.safe_load(spec_path.read_text())
    option = sorted(spec["argument_specs"]["main"]["options"])[0]
    spec["argument_specs"]["main"]["options"][option]["description"] = "A description nobody regenerated."
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))

    res = run_varref("--check", "--roles", roles, "--output", doc)
    assert res.returncode == 1
    assert "out of date for: replica." in res.stderr, res.stderr
    assert doc.read_text() == DOC.read_text()  # --check writes nothing

    assert run_varref("--roles", roles, "--output", doc).returncode == 0
    assert "A description nobody regenerated." in doc.read_text()
    assert run_varref("--check", "--roles", roles, "--output", doc).returncode == 0


def test_every_role_and_entry_point_has_its_table():
    text = DOC.read_text()
    for role in ROLES:
        for ep in role.spec:
            assert f"### `{role.name}` entry point `{ep}`" in text
        for name in varref.spec_options(role):
            assert f"| `{name}` |" in text, f"{role.name}: {name} is not in docs/variables.md"


def leaves(value):
    """The strings of a value (a dict's values, not its keys)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for item in value for s in leaves(item)]
    return [value] if isinstance(value, str) else []


def secret_strings(role):
    """(name, string) of every default varref treats as a secret."""
    for name, (_, option) in varref.spec_options(role).items():
        for value in (option.get("default"), role.defaults.get(name)):
            if value is None or varref.empty(value):
                continue
            if option.get("no_log") or varref.secret_name(name) or varref.secret_value(value):
                yield from ((name, s) for s in leaves(value) if not varref.is_template(s))


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_no_secret_default_is_printed(role):
    text = DOC.read_text()
    assert [(name, s) for name, s in secret_strings(role) if len(s) >= 6 and s in text] == []


def test_the_demo_secret_values_are_not_printed():
    cluster = next(role for role in ROLES if role.name == "cluster")
    values = cluster.defaults["cluster_demo_secret_values"]
    assert values and not [v for v in values if v in DOC.read_text()]


def test_the_generator_hides_what_looks_like_a_secret(tmp_path):
    """A made-up role with secret-looking defaults: none is printed, the rest is."""
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    options = {
        "demo_admin_password": {"type": "str", "description": "by name"},
        "demo_signing": {"type": "str", "no_log": True, "default": "plain-words-but-no-log", "description": "no_log"},
        "demo_opaque": {"type": "str", "description": "shaped like a token"},
        "demo_cert_body": {"type": "str", "description": "a PEM block"},
        "demo_api_tokens": {"type": "list", "elements": "str", "description": "a list of them"},
        "demo_secrets_file": {"type": "path", "description": "where secrets live: shown"},
        "demo_packages": {"type": "list", "elements": "str", "description": "long: summarised"},
        "demo_url": {"type": "str", "description": "computed"},
        "demo_mode": {"type": "str", "choices": ["a", "b"], "default": "a", "description": ["C(a)", "or V(b)."]},
    }
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(
        {"argument_specs": {"main": {"short_description": "A demo", "options": options}}}))
    (role / "defaults" / "main.yml").write_text(yaml.safe_dump({
        "demo_admin_password": "correct-horse-battery",
        "demo_signing": "plain-words-but-no-log",
        "demo_opaque": "Zq8XcV2bN7mL4kJ9hG3fD6sA1pO0iU5y",
        "demo_cert_body": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
        "demo_api_tokens": ["tok-one-value", "tok-two-value"],
        "demo_secrets_file": "/etc/demo/secrets.yml",
        "demo_packages": [f"package-number-{i}" for i in range(12)],
        "demo_url": "http://{{ inventory_hostname }}:8000",
        "demo_mode": "a",
    }))
    text = varref.document(varref.render(tmp_path / "roles"))
    for secret in ("correct-horse-battery", "plain-words-but-no-log", "Zq8XcV2bN7mL4kJ9hG3fD6sA1pO0iU5y",
                   "BEGIN PRIVATE KEY", "MIIB", "tok-one-value", "tok-two-value"):
        assert secret not in text
    assert "`/etc/demo/secrets.yml`" in text
    assert "list of 12: `package-number-0`" in text and "package-number-11" not in text
    assert "`http://{{ inventory_hostname }}:8000` (computed)" in text
    assert "| `demo_mode` | str | `a` | no | `a`, `b` | `a` or `b`. |" in text
    assert "| `demo_api_tokens` | list of str | list of 2 *(not shown)* |" in text


# ------------------------------------------- defaults and argument specs agree

def gaps(role):
    options = varref.spec_options(role)
    undocumented = sorted(set(role.defaults) - set(options))
    # A required option is the user's to give; every other one needs a default.
    no_default = sorted(name for name, (_, option) in options.items()
                        if name not in role.defaults and not option.get("required"))
    return undocumented, no_default


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_every_default_is_in_the_spec_and_every_option_has_a_default(role):
    undocumented, no_default = gaps(role)
    assert not undocumented and not no_default, (
        f"role {role.name}: defaults not in the argument spec: {', '.join(undocumented) or '-'}; "
        f"options of the spec without a default in defaults/: {', '.join(no_default) or '-'}")


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_a_spec_default_is_the_role_default(role):
    """Ansible does not apply an argument spec's default: the role's defaults are what
    runs, so a different spec default would document something that never happens."""
    differ = {name: (option["default"], role.defaults[name])
              for name, (_, option) in varref.spec_options(role).items()
              if "default" in option and name in role.defaults and option["default"] != renamed(role.defaults[name])}
    assert differ == {}


FORMER_NAME = re.compile(r"^\{\{ (?:cluster|master)_[a-z0-9_]+ \| default\((.*)\) \}\}$", re.S)


def renamed(default):
    """A setting renamed with its former name read until 1.0.0 has the default
    "{{ cluster_... | default(V) }}": V is what runs when neither name is set."""
    match = FORMER_NAME.match(default.strip()) if isinstance(default, str) else None
    return yaml.safe_load(match.group(1)) if match else default


def test_a_renamed_setting_falls_back_to_its_former_name_then_to_its_default():
    assert renamed("{{ cluster_backup_s3 | default({}) }}") == {}
    assert renamed("{{ cluster_backup_stanza | default('supabase') }}") == "supabase"
    assert renamed("{{ cluster_backup_cipher | default(true) }}") is True
    assert renamed("{{ other | default(1) }}") == "{{ other | default(1) }}"


# --------------------------------------------------- one version in one place

def releases():
    data = yaml.safe_load((CHANGELOGS / "changelog.yaml").read_text()) or {}
    return data.get("releases") or {}


def documentation(path):
    """A plugin's DOCUMENTATION: a module's string constant, or a filter's YAML file."""
    if path.suffix == ".py":
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets)
                    and isinstance(node.value, ast.Constant)):
                return yaml.safe_load(node.value.value)
        return None
    return (yaml.safe_load(path.read_text()) or {}).get("DOCUMENTATION")


def versions_added(doc, where=""):
    """(where, version_added) of the plugin and of each of its options and suboptions."""
    if doc.get("version_added") is not None:
        yield where.rstrip(".") or "(plugin)", str(doc["version_added"])
    for name, option in (doc.get("suboptions" if where else "options") or {}).items():
        if isinstance(option, dict):
            yield from versions_added(option, f"{where}{name}.")


def later_than_galaxy(paths):
    galaxy = Version(GALAXY["version"])
    late = []
    for path in paths:
        doc = documentation(path)
        for where, added in versions_added(doc or {}):
            if Version(added) > galaxy:
                late.append(f"{path.relative_to(ROOT)} {where}: version_added {added}")
    return late


def test_galaxy_version_is_the_newest_release_of_the_changelog_or_the_next_one():
    assert releases(), "changelogs/changelog.yaml has no release"
    newest = max(releases(), key=Version)
    # galaxy.yml names the release in the making once fragments wait for it.
    pending = [f for f in (CHANGELOGS / "fragments").glob("*.y*ml")]
    if pending:
        assert Version(GALAXY["version"]) > Version(newest), pending
    else:
        assert GALAXY["version"] == newest


def test_no_module_or_option_is_added_after_galaxys_version():
    modules = sorted((ROOT / "plugins" / "modules").glob("*.py"))
    assert modules and all(documentation(m) for m in modules if m.name != "__init__.py")
    assert later_than_galaxy(modules) == []


def test_no_other_plugin_is_added_after_galaxys_version():
    paths = sorted(p for p in (ROOT / "plugins").glob("*/*") if p.parent.name != "modules"
                   and p.suffix in (".yml", ".yaml", ".py") and documentation(p))
    assert later_than_galaxy(paths) == []


def test_the_readme_claims_no_version():
    """The version lives in galaxy.yml (and the changelog); a README that names it goes stale."""
    readme = (ROOT / "README.md").read_text()
    claims = [m.group(0) for m in re.finditer(r"Status\s*\(|\b%s\b" % re.escape(GALAXY["version"]), readme)]
    assert claims == []


# ---------------------------------------------------------------- changelog

CONFIG = yaml.safe_load((CHANGELOGS / "config.yaml").read_text())
SECTIONS = {name for name, _ in CONFIG["sections"]}


def fragment_problems(notesdir):
    """What is wrong with each fragment: a YAML mapping of the configured sections to
    lists of entries (the release summary a string), as antsibull-changelog lint wants."""
    problems = []
    for path in sorted(Path(notesdir).iterdir()):
        if path.name in (".keep", ".gitkeep"):
            continue
        if path.suffix not in (".yml", ".yaml") or path.name.startswith("."):
            problems.append(f"{path.name}: not a .yml or .yaml file")
            continue
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict) or not data:
            problems.append(f"{path.name}: not a mapping of sections")
            continue
        for section, entries in data.items():
            if section == CONFIG["prelude_section_name"]:
                ok = isinstance(entries, str) and entries.strip()
            elif section in SECTIONS or section == CONFIG["trivial_section_name"]:
                ok = isinstance(entries, list) and entries and all(isinstance(e, str) and e.strip() for e in entries)
            else:
                problems.append(f"{path.name}: unknown section {section!r} (one of {', '.join(sorted(SECTIONS))})")
                continue
            if not ok:
                problems.append(f"{path.name}: {section} must be a list of non-empty strings")
    return problems


def test_changelog_fragments_are_well_formed():
    assert fragment_problems(CHANGELOGS / CONFIG["notesdir"]) == []


def rst_problems(text):
    """What docutils reports for a changelog entry (the changelog is rendered as RST)."""
    import io

    from docutils.core import publish_doctree
    stream = io.StringIO()
    publish_doctree(text, settings_overrides={"warning_stream": stream, "report_level": 2})
    return stream.getvalue()


@pytest.mark.skipif(importlib.util.find_spec("docutils") is None, reason="docutils is not installed")
def test_every_changelog_entry_is_valid_rst():
    """ansible-test's changelog check renders the entries: a word ending in _ is an RST link."""
    for path in sorted((CHANGELOGS / CONFIG["notesdir"]).glob("*.y*ml")):
        for section, entries in (yaml.safe_load(path.read_text()) or {}).items():
            for entry in entries:
                assert rst_problems(entry) == "", f"{path.name} ({section}): {entry[:60]}"
    assert "Unknown target name" in rst_problems("a malformed sb_ key")


def test_a_bad_fragment_is_found(tmp_path):
    (tmp_path / ".keep").touch()
    (tmp_path / "good.yml").write_text("minor_changes:\n  - status.yml - something new.\n")
    (tmp_path / "section.yml").write_text("bugfix:\n  - a section that does not exist\n")
    (tmp_path / "scalar.yml").write_text("bugfixes: one string, not a list\n")
    (tmp_path / "notes.txt").write_text("bugfixes: []\n")
    assert fragment_problems(tmp_path) == [
        "notes.txt: not a .yml or .yaml file",
        "scalar.yml: bugfixes must be a list of non-empty strings",
        f"section.yml: unknown section 'bugfix' (one of {', '.join(sorted(SECTIONS))})",
    ]


def test_every_release_has_a_date_and_known_sections():
    for version, release in releases().items():
        Version(version)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(release.get("release_date"))), version
        unknown = set(release.get("changes") or {}) - SECTIONS - {CONFIG["prelude_section_name"]}
        assert not unknown, f"{version}: unknown sections {unknown}"


antsibull = pytest.mark.skipif(importlib.util.find_spec("antsibull_changelog") is None,
                               reason="antsibull-changelog is not installed (requirements.txt pins it)")


def changelog_tool(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "antsibull_changelog", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@antsibull
def test_antsibull_changelog_lint():
    res = changelog_tool("lint")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = changelog_tool("lint-changelog-yaml", CHANGELOGS / "changelog.yaml")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


@antsibull
def test_changelog_md_is_the_rendered_changelog(tmp_path):
    """CHANGELOG.md is generated: `antsibull-changelog generate` gives it as it is."""
    res = changelog_tool("generate", "--output", tmp_path / "CHANGELOG.md")
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "CHANGELOG.md").read_text() == (ROOT / "CHANGELOG.md").read_text(), (
        "CHANGELOG.md is not what changelogs/changelog.yaml gives: run `antsibull-changelog generate`")
