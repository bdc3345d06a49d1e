"""The action group selfhost.supabase.postgres: one module_defaults entry gives every module
that logs in to PostgreSQL its login (run through ansible-playbook against a real server)."""

import json
import os
import subprocess
import sys

from conftest import ADMIN_PASSWORD, COLLECTIONS, ROOT


def test_one_module_defaults_entry_logs_every_module_in(primary, tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(f"""
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/selfhost.supabase.postgres:
      login_host: 127.0.0.1
      login_port: {primary.port}
      login_user: postgres
      login_password: "{{{{ admin_password }}}}"
  tasks:
    - name: Read the server's state with the group's login alone
      selfhost.supabase.pg_replication_info: {{}}
      register: state
    - name: Ask pg_promote, which refuses a primary that never was a standby
      selfhost.supabase.pg_promote: {{}}
      register: promote
      failed_when: "'was never a standby' not in promote.msg"
    - name: Show
      ansible.builtin.copy:
        content: "{{{{ {{'role': state.role, 'promote': promote.msg}} | to_json }}}}"
        dest: {tmp_path}/result.json
        mode: "0600"
""")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    res = subprocess.run([str(os.path.join(os.path.dirname(sys.executable), "ansible-playbook")), "-i", "localhost,",
                          "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
                          "-e", f"admin_password={ADMIN_PASSWORD}", str(playbook)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert ADMIN_PASSWORD not in res.stdout
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["role"] == "primary"
