#!/usr/bin/env python3
"""Write docs/variables.md, the reference of every role's variables, from the
roles' argument specs (roles/*/meta/argument_specs.yml, every entry point) and
their defaults (roles/*/defaults/main.yml or defaults/main/*.yml).

    python3 scripts/varref.py            write docs/variables.md
    python3 scripts/varref.py --check    exit 1, naming the roles that drifted,
                                         when docs/variables.md is not what the
                                         specs give

A default comes from the spec's `default`, else from the role's defaults.  A
value that looks like a secret (a `no_log` option, a name such as *password*,
*secret*, *token* or *key*, or a value shaped like a key or a token) is never
printed; long values are summarised.  Standard library and PyYAML only.
"""

import argparse
import difflib
import os
import re
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # a bare python3 without PyYAML: the checkout's venv has it
    VENV_PY = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"
    if VENV_PY.exists() and Path(sys.executable).resolve() != VENV_PY.resolve():
        os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])
    sys.exit("varref.py needs PyYAML (pip install pyyaml, or run it with .venv/bin/python)")

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "python3 scripts/varref.py"
MAX_INLINE = 60          # characters of a list, dict or expression shown as it is
MAX_STRING = 80          # characters of a string shown as it is
SHOWN_ITEMS = 4          # items or keys named in a summarised list or dict

# Names whose values are secrets, unless they name where something is kept.
SECRET_NAME = re.compile(r"(password|passwd|passphrase|secret|token|cipher_pass|api_key|private_key|(^|_)key$)")
LOCATION_NAME = re.compile(r"_(file|files|dir|path|paths|group|port|names?|user)$")
# Values shaped like secrets whatever their name: PEM blocks, JWTs, long random tokens.
SECRET_VALUE = [
    re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"^(?=[^ ]*\d)(?=[^ ]*[a-z])(?=[^ ]*[A-Z])[A-Za-z0-9+/=_-]{24,}$"),
    re.compile(r"^\$ANSIBLE_VAULT;"),
]


# ------------------------------------------------------------------- reading

class Role:
    def __init__(self, name, spec, defaults, default_files):
        self.name = name
        self.spec = spec                      # entry point => its spec
        self.defaults = defaults              # variable => value
        self.default_files = default_files    # variable => path relative to the role


def _yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def defaults_files(role_dir):
    """The files Ansible reads for a role's defaults, in the order it reads them."""
    base = role_dir / "defaults"
    for name in ("main.yml", "main.yaml", "main"):
        path = base / name
        if path.is_file():
            return [path]
        if path.is_dir():
            return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))
    return []


def load_role(role_dir):
    spec_path = role_dir / "meta" / "argument_specs.yml"
    if not spec_path.is_file():
        spec_path = role_dir / "meta" / "argument_specs.yaml"
    spec = (_yaml(spec_path) or {}).get("argument_specs") or {} if spec_path.is_file() else {}
    defaults, where = {}, {}
    for path in defaults_files(role_dir):
        for key, value in (_yaml(path) or {}).items():
            defaults[key] = value
            where[key] = path.relative_to(role_dir).as_posix()
    return Role(role_dir.name, spec, defaults, where)


def load_roles(roles_dir):
    return [load_role(d) for d in sorted(Path(roles_dir).iterdir(), key=lambda p: p.name)
            if d.is_dir() and ((d / "meta" / "argument_specs.yml").is_file()
                               or (d / "meta" / "argument_specs.yaml").is_file())]


def entry_points(role):
    """`main` first, then the others by name."""
    return sorted(role.spec, key=lambda ep: (ep != "main", ep))


def spec_options(role):
    """Every option of every entry point: name => (entry point, spec)."""
    options = {}
    for ep in entry_points(role):
        for name, option in (role.spec[ep].get("options") or {}).items():
            options.setdefault(name, (ep, option or {}))
    return options


# ----------------------------------------------------------------- rendering

MARKUP = [  # Ansible's documentation markup, as Markdown
    (re.compile(r"\bL\(([^)]+?),\s*([^)]+?)\)"), r"[\1](\2)"),
    (re.compile(r"\bU\(([^)]+?)\)"), r"\1"),
    (re.compile(r"\bRV\(([^)]+?)\)"), r"`\1`"),
    (re.compile(r"\b[COVEMP]\(([^)]+?)\)"), r"`\1`"),
    (re.compile(r"\bI\(([^)]+?)\)"), r"*\1*"),
    (re.compile(r"\bB\(([^)]+?)\)"), r"**\1**"),
    (re.compile(r"\bHORIZONTALLINE\b"), "—"),
]


def escape(value):
    """Plain text as Markdown that shows it as it is (no emphasis, no HTML)."""
    return (value.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`")
            .replace("<", "&lt;").replace(">", "&gt;"))


def text(value):
    """A spec's description (a string or a list of them) as one Markdown line."""
    if value is None:
        return ""
    parts = value if isinstance(value, list) else [value]
    out = " ".join(" ".join(str(p).split()) for p in parts)
    kept = []

    def keep(rendered):
        kept.append(rendered)
        return f"\x00{len(kept) - 1}\x00"

    for pattern, repl in MARKUP:  # markup first, its output kept from the escaping
        out = pattern.sub(lambda m, repl=repl: keep(m.expand(repl)), out)
    out = escape(out)
    out = re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], out)
    return cell(out)


def sentence(value):
    out = text(value)
    return out if out.endswith((".", "!", "?")) else out + "."


def cell(value):
    return value.replace("|", "\\|").replace("\n", " ")


def code(value):
    """Inline code that survives a table cell (backticks inside get a longer fence)."""
    value = value.replace("|", "\\|")
    fence = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)


def is_template(value):
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def empty(value):
    return value in ("", None) or value == [] or value == {}


def secret_name(name):
    return bool(SECRET_NAME.search(name)) and not LOCATION_NAME.search(name)


def secret_value(value):
    return any(p.search(s) for s in strings_in(value) if not is_template(s) for p in SECRET_VALUE)


def flow(value):
    """A value as one line of YAML flow style (what a user would write)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if value == "":
        return '""'
    dumped = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), sort_keys=False).strip()
    return dumped.removesuffix("...").strip()


def summary(value):
    if isinstance(value, dict):
        keys = [str(k) for k in value]
        named = ", ".join(code(k) for k in keys[:SHOWN_ITEMS]) + (", …" if len(keys) > SHOWN_ITEMS else "")
        return f"dict of {len(keys)}: {named}"
    if isinstance(value, list):
        if all(isinstance(i, (str, int, float, bool)) for i in value):
            items = [flow(i) for i in value]
            named = ", ".join(code(i) for i in items[:SHOWN_ITEMS]) + (", …" if len(items) > SHOWN_ITEMS else "")
            return f"list of {len(items)}: {named}"
        return f"list of {len(value)}"
    return None


def render_default(role, name, option):
    """The Default cell: the spec's default, else the role's defaults, never a secret."""
    if "default" in option:
        value, source = option["default"], "spec"
    elif name in role.defaults:
        value, source = role.defaults[name], role.default_files[name]
    else:
        return "—"
    if empty(value) and not option.get("no_log"):
        return code(flow(value))
    secret = option.get("no_log") or secret_name(name) or secret_value(value)
    if secret:
        if isinstance(value, dict):
            return f"dict of {len(value)} *(values not shown)*"
        if isinstance(value, list):
            return f"list of {len(value)} *(not shown)*"
        return "*(computed)*" if is_template(value) else "*(secret, not shown)*"
    if is_template(value):
        one_line = " ".join(value.split())
        if len(one_line) <= MAX_INLINE:
            return f"{code(one_line)} (computed)"
        where = f"roles/{role.name}/{source}" if source != "spec" else f"roles/{role.name}/meta/argument_specs.yml"
        return f"computed, see {code(where)}"
    one_line = flow(value)
    if len(one_line) <= (MAX_STRING if isinstance(value, str) else MAX_INLINE):
        return code(one_line)
    return summary(value) or code(one_line[:MAX_STRING - 1] + "…")


def render_type(option):
    kind = option.get("type", "str")
    if option.get("elements"):
        kind = f"{kind} of {option['elements']}"
    return kind


def render_choices(option):
    choices = option.get("choices")
    if not choices:
        return ""
    return ", ".join(code(flow(c)) for c in choices)


def anchor(role_name):
    return "role-" + re.sub(r"[^a-z0-9-]", "", role_name.lower().replace("_", "-"))


def role_summary(role):
    """The entry point that describes the role: main, else its first (a role without main steps)."""
    points = entry_points(role)
    return role.spec.get("main") or (role.spec[points[0]] if points else {}) or {}


def render_role(role):
    """One role's section: its descriptions and a table per entry point."""
    lines = [f'<a id="{anchor(role.name)}"></a>', "", f"## Role `{role.name}`", ""]
    main = role_summary(role)
    if main.get("short_description"):
        lines += [sentence(main["short_description"]), ""]
    for paragraph in main.get("description") or []:
        lines += [text(paragraph), ""]
    files = sorted(set(role.default_files.values()))
    if files:
        lines += ["Defaults: " + ", ".join(code(f"roles/{role.name}/{f}") for f in files) + ".", ""]
    for ep in entry_points(role):
        spec = role.spec[ep] or {}
        lines.append(f"### `{role.name}` entry point `{ep}`")
        lines.append("")
        if spec is not main:
            if spec.get("short_description"):
                lines += [sentence(spec["short_description"]), ""]
            for paragraph in spec.get("description") or []:
                lines += [text(paragraph), ""]
        options = spec.get("options") or {}
        if not options:
            lines += ["No variables.", ""]
            continue
        lines.append("| Variable | Type | Default | Required | Choices | Description |")
        lines.append("| --- | --- | --- | --- | --- | --- |")
        for name in sorted(options):
            option = options[name] or {}
            lines.append("| " + " | ".join([
                code(name),
                render_type(option),
                render_default(role, name, option),
                "yes" if option.get("required") else "no",
                render_choices(option),
                text(option.get("description")),
            ]) + " |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def render_head(roles):
    lines = [
        "# Role variables",
        "",
        f"> Generated by `{COMMAND}` from each role's `meta/argument_specs.yml` and `defaults/`; "
        f"do not edit this file by hand. `{COMMAND} --check` says whether it is up to date.",
        "",
        "Every variable a role takes, by role and entry point. **Default** is the argument spec's default, else "
        "the role's defaults; *computed* values are Jinja expressions evaluated on each run; secrets are never "
        "shown. Variables the roles share (addresses, ports, TLS, auto mode) are the `cluster` role's "
        "`cluster_*`; the backup settings, which other roles read too, are the `backup` role's `backup_*`.",
        "",
        "| Role | What it does |",
        "| --- | --- |",
    ]
    for role in roles:
        short = role_summary(role).get("short_description", "")
        lines.append(f"| [`{role.name}`](#{anchor(role.name)}) | {text(short)} |")
    return "\n".join(lines) + "\n"


def render(roles_dir):
    """name => text of each part (the head, then one per role), in document order."""
    roles = load_roles(roles_dir)
    parts = {"(header and index)": render_head(roles)}
    for role in roles:
        parts[role.name] = render_role(role)
    return parts


def document(parts):
    return "\n".join(parts.values())


# ------------------------------------------------------------------------ cli

def drifted(parts, current):
    """Names of the parts (roles) whose text the current file does not hold as generated."""
    names = [name for name, part in parts.items() if part not in current]
    known = {f"## Role `{name}`" for name in parts}
    stale = [line[len("## Role `"):-1] for line in current.splitlines()
             if line.startswith("## Role `") and line not in known]
    return names + [f"{name} (no longer in roles/)" for name in stale]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is not what the specs give")
    parser.add_argument("--roles", default=str(ROOT / "roles"), help="roles directory (default: the checkout's)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "variables.md"), help="the reference file")
    parser.add_argument("--diff", action="store_true", help="with --check, print a unified diff too")
    args = parser.parse_args(argv)

    parts = render(args.roles)
    wanted = document(parts)
    output = Path(args.output)
    if args.check:
        current = output.read_text(encoding="utf-8") if output.is_file() else ""
        if current == wanted:
            return 0
        names = drifted(parts, current) or ["(layout)"]
        print(f"{output} is out of date for: {', '.join(names)}.", file=sys.stderr)
        print(f"Regenerate it with `{COMMAND}`.", file=sys.stderr)
        if args.diff:
            sys.stderr.writelines(difflib.unified_diff(current.splitlines(True), wanted.splitlines(True),
                                                       str(output), "generated"))
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    if not output.is_file() or output.read_text(encoding="utf-8") != wanted:
        output.write_text(wanted, encoding="utf-8")
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
