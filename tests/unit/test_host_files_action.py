"""The action plugin selfhost.supabase.host_files on this machine (connection local): what
it writes, that a second run changes nothing, check and diff mode, drift in mode, a failing
validation, a secret's diff, templates found in the calling role and its includer, bad input."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ME = os.getuid()


@pytest.fixture
def project(tmp_path):
    """A playbook whose role `writer` calls host_files from a task file that the role
    `caller` includes, so templates come from both roles."""
    roles = tmp_path / "roles"
    (roles / "writer" / "tasks").mkdir(parents=True)
    (roles / "writer" / "templates").mkdir()
    (roles / "caller" / "tasks").mkdir(parents=True)
    (roles / "caller" / "templates").mkdir()
    (roles / "writer" / "templates" / "settings.conf.j2").write_text("port = {{ port }}\nname = {{ name }}\n")
    (roles / "caller" / "templates" / "extra.conf.j2").write_text("extra = {{ extra_value | default('none') }}\n")
    (tmp_path / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (roles / "writer" / "tasks" / "files.yml").write_text(textwrap.dedent("""\
        - name: Put the files in place
          selfhost.supabase.host_files:
            dirs: "{{ dirs }}"
            files: "{{ files }}"
          register: out

        - name: Keep the result
          ansible.builtin.copy:
            content: "{{ out | to_json }}"
            dest: "{{ result_file }}"
            mode: "0600"
          check_mode: false
        """))
    (roles / "caller" / "tasks" / "main.yml").write_text(textwrap.dedent("""\
        - name: Include the writer's task file
          ansible.builtin.include_role:
            name: writer
            tasks_from: files.yml
        """))
    (tmp_path / "play.yml").write_text(textwrap.dedent("""\
        - name: Write
          hosts: localhost
          connection: local
          gather_facts: false
          roles: [caller]
        """))
    return tmp_path


def run(project, files, dirs=(), *extra):
    target = project / "target"
    spec = dict(dirs=list(dirs), files=files, port=5432, name="lab", result_file=str(project / "result.json"))
    (project / "vars.json").write_text(json.dumps(spec).replace("@T", str(target)))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_ROLES_PATH=str(project / "roles"),
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOWS="1", ANSIBLE_LOCALHOST_WARNING="0")
    res = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(project / "play.yml"),
                          "-e", f"@{project / 'vars.json'}",
                          "-e", f"ansible_python_interpreter={sys.executable}", *extra], env=env, capture_output=True, text=True, timeout=120)
    out = json.loads((project / "result.json").read_text()) if res.returncode == 0 else None
    (project / "result.json").unlink(missing_ok=True)
    return res, out


FILES = [
    {"dest": "@T/conf/settings.conf", "template": "settings.conf.j2", "owner": ME, "group": os.getgid(), "mode": "0640"},
    {"dest": "@T/conf/extra.conf", "template": "extra.conf.j2", "vars": {"extra_value": "yes"},
     "owner": ME, "group": os.getgid()},
    {"dest": "@T/conf/server.crt", "src": "@P/cert.pem", "owner": ME, "group": os.getgid()},
    {"dest": "@T/conf/server.key", "content": "private-key-text\n", "mode": "0600", "secret": True,
     "owner": ME, "group": os.getgid()},
]
DIRS = [{"path": "@T/conf", "mode": "0750", "owner": ME, "group": os.getgid()}]


def files_for(project, files=FILES):
    return json.loads(json.dumps(files).replace("@P", str(project)))


def test_first_run_writes_everything_and_second_run_changes_nothing(project):
    res, out = run(project, files_for(project), DIRS)
    assert res.returncode == 0, res.stdout + res.stderr
    target = project / "target" / "conf"
    assert out["changed"] is True and out["dirs"] == [str(target)]
    assert sorted(out["written"]) == sorted(str(target / n) for n in ("settings.conf", "extra.conf", "server.crt",
                                                                         "server.key"))
    # Templates from the role that holds the task and from the role that included it; per-file vars.
    assert (target / "settings.conf").read_text() == "port = 5432\nname = lab\n"
    assert (target / "extra.conf").read_text() == "extra = yes\n"
    assert (target / "server.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert oct((target / "server.key").stat().st_mode & 0o777) == "0o600"
    assert oct(target.stat().st_mode & 0o777) == "0o750"

    res, out = run(project, files_for(project), DIRS)
    assert res.returncode == 0, res.stdout + res.stderr
    assert out["changed"] is False and out["written"] == [] and out["dirs"] == []


def test_check_mode_changes_nothing_and_reports_what_would_be_written(project):
    res, out = run(project, files_for(project), DIRS, "--check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert out["changed"] is True and len(out["written"]) == 4
    assert not (project / "target").exists()


def test_only_what_differs_is_written_and_diff_hides_secrets(project):
    assert run(project, files_for(project), DIRS)[0].returncode == 0
    target = project / "target" / "conf"
    (target / "extra.conf").chmod(0o666)
    (target / "server.key").write_text("tampered\n")
    res, out = run(project, files_for(project), DIRS, "--diff", "-e", "port=6543")
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(out["written"]) == sorted(str(target / n) for n in ("settings.conf", "extra.conf", "server.key"))
    assert oct((target / "extra.conf").stat().st_mode & 0o777) == "0o644"
    assert (target / "server.key").read_text() == "private-key-text\n"
    shown = json.dumps(out.get("diff", []))
    assert "6543" in shown
    assert "private-key-text" not in res.stdout + shown and "tampered" not in res.stdout + shown


def test_a_file_that_fails_validation_is_not_written(project):
    files = [{"dest": "@T/conf/settings.conf", "template": "settings.conf.j2", "validate": "grep -q nomatch %s"}]
    res, _ = run(project, files, DIRS)
    assert res.returncode != 0
    assert "failed" in res.stdout and not (project / "target" / "conf" / "settings.conf").exists()


@pytest.mark.parametrize("files, words", [
    ([{"dest": "@T/a", "template": "missing.j2"}], "missing.j2"),
    ([{"dest": "@T/a", "content": "x", "src": "/etc/hostname"}], "mutually exclusive"),
    ([{"dest": "@T/a"}], "one of the following is required"),
    ([{"dest": "@T/a", "content": "x"}, {"dest": "@T/a", "content": "y"}], "given more than once"),
    ([{"template": "settings.conf.j2"}], "dest"),
])
def test_bad_input_is_refused_before_anything_is_written(project, files, words):
    res, _ = run(project, files, DIRS)
    assert res.returncode != 0
    assert words in res.stdout, res.stdout[-2000:]
    assert not (project / "target").exists()
