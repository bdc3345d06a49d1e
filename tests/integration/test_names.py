"""The collection's old names keep working until 1.0.0, each with a deprecation warning: the
read-only modules' names from before they were named *_info (meta/runtime.yml's plugin_routing
redirects them) and the options' older names (deprecated aliases; pg_basebackup_path, which
names a binary where bin_dir names a directory, is an option of its own that is deprecated)."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import (ADMIN_PASSWORD, COLLECTIONS, PG_BIN, REPL_PASSWORD, REPL_USER, ROOT, admin_args, os_user, pg,
                      run_module)

RUNTIME = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
# Old module name -> new module name.
RENAMED_MODULES = {"pg_replication_status": "pg_replication_info", "pg_controldata": "pg_controldata_info"}
REMOVAL = "1.0.0"


def deprecations(res):
    """(message, version, collection) of every deprecation a module returned, in the form of
    ansible-core 2.19 (event/deprecator) or of the releases before it (msg/collection_name)."""
    found = []
    for d in res.get("deprecations", []):
        msg = d.get("msg") or (d.get("event") or {}).get("msg")
        collection = d.get("collection_name") or (d.get("deprecator") or {}).get("resolved_name")
        found.append((msg, d.get("version"), collection))
    return found


def alias_deprecation(name):
    return (f"Alias '{name}' is deprecated. See the module docs for more information", REMOVAL, "selfhost.supabase")


def option_deprecation(name):
    return (f"Param '{name}' is deprecated. See the module docs for more information", REMOVAL, "selfhost.supabase")


def run_playbook(tmp_path, text):
    """ansible-playbook on localhost with the checkout's collection; returns (rc, output on one line)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(text)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_DEPRECATION_WARNINGS="true", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    res = subprocess.run([str(os.path.join(os.path.dirname(sys.executable), "ansible-playbook")), "-i", "localhost,",
                          "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
                          "-e", f"admin_password={ADMIN_PASSWORD}", str(playbook)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180)
    return res.returncode, " ".join((res.stdout + res.stderr).split())


# ------------------------------------------------------------------ module names
def test_the_old_module_names_are_routed_to_the_new_ones():
    routing = RUNTIME["plugin_routing"]["modules"]
    assert set(routing) == set(RENAMED_MODULES)
    for old, new in RENAMED_MODULES.items():
        assert routing[old]["redirect"] == f"selfhost.supabase.{new}"
        assert str(routing[old]["deprecation"]["removal_version"]) == REMOVAL
        assert f"selfhost.supabase.{new}" in routing[old]["deprecation"]["warning_text"]
        assert (ROOT / "plugins" / "modules" / f"{new}.py").is_file()
        assert not (ROOT / "plugins" / "modules" / f"{old}.py").exists(), "a redirect replaces the old file"
    # The group names the modules by their new names; a task that uses an old one resolves to the new one first.
    group = RUNTIME["action_groups"]["postgres"]
    assert "pg_replication_info" in group and not set(group) & set(RENAMED_MODULES)


def test_a_playbook_that_uses_the_old_module_names_still_runs_and_is_warned(primary, tmp_path):
    rc, out = run_playbook(tmp_path, f"""
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/selfhost.supabase.postgres:
      login_host: 127.0.0.1
      login_port: {primary.port}
      login_user: postgres
      login_password: "{{{{ admin_password }}}}"
  tasks:
    - name: pg_replication_info by its old name, with the group's login alone
      selfhost.supabase.pg_replication_status: {{}}
      register: by_old_name
    - name: pg_controldata_info by its old name
      selfhost.supabase.pg_controldata:
        data_dir: {primary.data_dir}
      register: control
    - name: Keep what they answered
      ansible.builtin.copy:
        content: "{{{{ {{'role': by_old_name.role, 'changed': by_old_name.changed, 'state': control.state,
                    'sysid': control.system_identifier}} | to_json }}}}"
        dest: {tmp_path}/result.json
        mode: "0600"
""")
    assert rc == 0, out[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    sysid = str(primary.query("SELECT system_identifier FROM pg_control_system()")[0][0])
    assert result == dict(role="primary", changed=False, state="in production", sysid=sysid)
    for old, new in RENAMED_MODULES.items():
        assert (f"[DEPRECATION WARNING]: selfhost.supabase.{old} has been deprecated. Use selfhost.supabase.{new} "
                "instead") in out, out[-3000:]
        assert f"removed from collection 'selfhost.supabase' version {REMOVAL}" in out
    assert ADMIN_PASSWORD not in out


def test_a_deprecated_alias_in_a_playbook_is_warned_about(primary, tmp_path):
    rc, out = run_playbook(tmp_path, f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: wait_timeout by its old name
      selfhost.supabase.pg_replication_info:
        login_host: 127.0.0.1
        login_port: {primary.port}
        login_user: postgres
        login_password: "{{{{ admin_password }}}}"
        timeout: 0
""")
    assert rc == 0, out[-3000:]
    assert ("[DEPRECATION WARNING]: Alias 'timeout' is deprecated. See the module docs for more information. "
            f"This feature will be removed from collection 'selfhost.supabase' version {REMOVAL}") in out, out[-3000:]


# ------------------------------------------------------------ option names
def test_pg_replication_info_takes_timeout_for_wait_timeout(primary):
    rc, res, raw = run_module("pg_replication_info", dict(admin_args(primary), expected_standbys=["ghost"], timeout=1))
    assert rc == 0, raw
    assert res["healthy"] is False and res["waited_seconds"] >= 1, "the alias's value was not used"
    assert deprecations(res) == [alias_deprecation("timeout")]
    rc, res, raw = run_module("pg_replication_info", dict(admin_args(primary), wait_timeout=0))
    assert rc == 0 and deprecations(res) == [], raw


def test_ssl_root_cert_still_names_ca_cert_and_ssl_rootcert_is_not_deprecated(primary, tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("not used: the test server has no TLS, and ssl_mode prefer falls back to a plain connection\n")
    rc, res, raw = run_module("pg_replication_info", dict(admin_args(primary), ssl_root_cert=str(ca)))
    assert rc == 0 and res["role"] == "primary", raw
    assert deprecations(res) == [alias_deprecation("ssl_root_cert")]
    rc, res, _ = run_module("pg_promote", dict(admin_args(primary), ssl_mode="verify-full",
                                               ssl_root_cert="/nonexistent/ca.crt"))
    assert rc != 0 and "ca_cert /nonexistent/ca.crt is not a readable file" in res["msg"], res["msg"]
    assert alias_deprecation("ssl_root_cert") in deprecations(res)
    rc, res, raw = run_module("pg_replication_info", dict(admin_args(primary), ssl_rootcert=str(ca)))
    assert rc == 0 and deprecations(res) == [], raw


PG_BASEBACKUP_ALIASES = {"primary_host": "login_host", "primary_port": "login_port",
                         "replication_user": "login_user", "replication_password": "login_password"}


@pytest.mark.parametrize("alias", sorted(PG_BASEBACKUP_ALIASES))
def test_pg_basebackup_takes_its_older_login_names(primary, target, alias):
    """Each alias alone in place of its option: the check connects to the primary with it."""
    args = dict(data_dir=str(target), login_host="127.0.0.1", login_port=primary.port, login_user=REPL_USER,
                login_password=REPL_PASSWORD, executor="local", os_user=os_user().pw_name)
    args[alias] = args.pop(PG_BASEBACKUP_ALIASES[alias])
    rc, res, raw = run_module("pg_basebackup", args, check_mode=True)
    assert rc == 0, raw
    assert res["changed"] is True and res["state_before"] == "empty" and res["system_identifier"]
    assert deprecations(res) == [alias_deprecation(alias)]
    assert REPL_PASSWORD not in raw


def test_pg_basebackup_path_still_runs_that_binary_and_is_deprecated(primary, target, pg_workdir):
    args = dict(data_dir=str(target), login_host="127.0.0.1", login_port=primary.port, login_user=REPL_USER,
                login_password=REPL_PASSWORD, executor="local", os_user=os_user().pw_name)
    missing = pg_workdir / f"{target.name}-missing"
    rc, res, _ = run_module("pg_basebackup", dict(args, data_dir=str(missing),
                                                  pg_basebackup_path="/nonexistent/pg_basebackup"))
    assert rc != 0 and "/nonexistent/pg_basebackup is not an executable" in res["msg"], res["msg"]
    assert option_deprecation("pg_basebackup_path") in deprecations(res)
    rc, res, raw = run_module("pg_basebackup", dict(args, pg_basebackup_path=str(PG_BIN / "pg_basebackup")))
    assert rc == 0 and res["changed"] is True and (target / "standby.signal").exists(), raw
    assert deprecations(res) == [option_deprecation("pg_basebackup_path")]


def test_bin_dir_names_the_directory_of_pg_basebackup(primary, target):
    args = dict(data_dir=str(target), login_host="127.0.0.1", login_port=primary.port, login_user=REPL_USER,
                login_password=REPL_PASSWORD, executor="local", os_user=os_user().pw_name)
    rc, res, _ = run_module("pg_basebackup", dict(args, bin_dir=str(PG_BIN), pg_basebackup_path=str(PG_BIN / "x")))
    assert rc != 0 and "mutually exclusive: bin_dir|pg_basebackup_path" in res["msg"], res["msg"]
    rc, res, _ = run_module("pg_basebackup", dict(args, bin_dir="/nonexistent/bin"))
    assert rc != 0 and "/nonexistent/bin/pg_basebackup is not an executable" in res["msg"], res["msg"]
    assert deprecations(res) == []


PG_REJOIN_ALIASES = {"source_host": "login_host", "source_port": "login_port", "source_user": "login_user",
                     "source_password": "login_password"}


def test_pg_rejoin_takes_its_older_login_names(pair):
    """Each alias alone in place of its option: the preview logs in to the primary with it."""
    primary, standby = pair
    pg("pg_ctl", "-D", str(standby.data_dir), "-m", "fast", "-w", "stop")
    for alias, option in sorted(PG_REJOIN_ALIASES.items()):
        args = dict(data_dir=str(standby.data_dir), login_host="127.0.0.1", login_port=primary.port,
                    login_user="postgres", login_password=ADMIN_PASSWORD, replication_user=REPL_USER,
                    replication_password=REPL_PASSWORD, executor="local", bin_dir=str(PG_BIN),
                    application_name=standby.application_name, slot_name="s1")
        args[alias] = args.pop(option)
        rc, res, raw = run_module("pg_rejoin", args, check_mode=True)
        assert rc == 0, (alias, raw)
        assert res["rewind_needed"] is False and res["source_timeline"] == 1, (alias, res)
        assert deprecations(res) == [alias_deprecation(alias)], alias
        assert ADMIN_PASSWORD not in raw and REPL_PASSWORD not in raw
