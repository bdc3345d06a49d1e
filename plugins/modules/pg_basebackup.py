#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_basebackup
short_description: Clone a PostgreSQL primary into a standby data directory
version_added: 0.1.0
description:
  - Fills an empty data directory with C(pg_basebackup) from a running primary and
    writes the standby configuration (C(standby.signal), C(primary_conninfo),
    C(primary_slot_name)) so that the server starts as a streaming standby.
  - By default runs the database image's own C(pg_basebackup) in a one-off container
    on the target host, so the host needs no PostgreSQL packages.
  - Never wipes a data directory that holds data unless O(force=true). A directory
    that already holds a standby of the same primary is not cloned again; when its
    standby configuration differs from the options (host, port, user, password,
    application name, slot, TLS), it is rewritten (RV(reconfigured)); the server then
    needs a reload (C(SELECT pg_reload_conf())) to stream with it.
  - The password travels in a temporary password file readable only by the image's
    postgres user, never on a command line and never in output.
author:
  - selfhost.supabase contributors (!UNKNOWN)
attributes:
  check_mode:
    support: full
    details: Reads the directory and asks the primary for its system identifier; changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - selfhost.supabase.postgres_login
options:
  data_dir:
    description: Host path of the standby's data directory (the database container mounts it).
    type: path
    required: true
  login_host:
    description:
      - Address of the primary, as reachable from this host.
      - The alias O(primary_host) is deprecated and will be removed in 1.0.0; use O(login_host).
    type: str
    required: true
    aliases: [primary_host]
  login_port:
    description:
      - Port the primary publishes for replication.
      - The alias O(primary_port) is deprecated and will be removed in 1.0.0; use O(login_port).
    type: int
    default: 5432
    aliases: [primary_port]
  login_user:
    description:
      - Role with the REPLICATION attribute on the primary. The module clones as it, and the standby
        streams as it (it is written into C(primary_conninfo)).
      - The alias O(replication_user) is deprecated and will be removed in 1.0.0; use O(login_user).
        In M(selfhost.supabase.pg_rejoin), which logs in as a superuser, C(replication_user) is an option
        of its own, the role the standby streams as.
    type: str
    default: supabase_replication_admin
    aliases: [replication_user]
  login_password:
    description:
      - Password of O(login_user), written into the standby's C(primary_conninfo).
      - The alias O(replication_password) is deprecated and will be removed in 1.0.0; use
        O(login_password). In M(selfhost.supabase.pg_rejoin), which logs in as a superuser,
        C(replication_password) is an option of its own, the password the standby streams with.
    type: str
    required: true
    aliases: [replication_password]
  slot_name:
    description:
      - Physical replication slot on the primary that the standby streams from.
        It must exist before the clone.
    type: str
  application_name:
    description: Name the standby reports to the primary (C(pg_stat_replication.application_name)).
    type: str
    default: standby
  executor:
    description:
      - V(docker) runs C(pg_basebackup) inside a one-off container of O(image).
      - V(local) runs a C(pg_basebackup) binary installed on the host.
    type: str
    choices: [docker, local]
    default: docker
  image:
    description: Database image to run C(pg_basebackup) from. Required when O(executor=docker).
    type: str
  bin_dir:
    description: Directory of the host's PostgreSQL binaries, whose C(pg_basebackup) runs with O(executor=local).
    type: path
    default: /usr/lib/postgresql/15/bin
  pg_basebackup_path:
    description:
      - Deprecated, and will be removed in 1.0.0; use O(bin_dir), the directory that holds
        C(pg_basebackup), as M(selfhost.supabase.pg_rejoin) does.
      - The C(pg_basebackup) binary to run with O(executor=local), instead of the one in O(bin_dir).
        Not an alias of O(bin_dir), since it names the binary, not its directory.
    type: path
  os_user:
    description:
      - Operating-system user that owns the data directory and runs the clone.
        Looked up inside O(image) with O(executor=docker), on the host otherwise.
    type: str
    default: postgres
  log_file:
    description:
      - Where pg_basebackup's progress is written as it runs (C(tail -f) it).
        Defaults to C(pg_basebackup.log) next to O(data_dir).
    type: path
  timeout:
    description: Seconds the clone may take before it is stopped and the module fails.
    type: int
    default: 3600
  force:
    description:
      - Wipe a data directory that holds another cluster, a primary, unknown files or a
        half-finished clone, and clone again. Everything in it is lost.
    type: bool
    default: false
requirements:
  - psycopg2 on the target host (Debian package python3-psycopg2)
  - Docker SDK for Python on the target host when O(executor=docker) (python3-docker)
notes:
  - The primary's pg_hba.conf must accept a C(replication) connection from this host.
"""

EXAMPLES = r"""
- name: Clone the primary into this replica's data directory
  selfhost.supabase.pg_basebackup:
    data_dir: /opt/supabase/volumes/db/data
    image: supabase/postgres:15.8.1.085
    login_host: 10.0.0.11
    login_port: 5433
    login_password: "{{ cluster_replication_password }}"
    slot_name: vm2
    application_name: vm2

- name: Dry run, as a preflight check before anything changes
  selfhost.supabase.pg_basebackup:
    data_dir: /opt/supabase/volumes/db/data
    image: supabase/postgres:15.8.1.085
    login_host: 10.0.0.11
    login_port: 5433
    login_password: "{{ cluster_replication_password }}"
  check_mode: true
"""

RETURN = r"""
state_before:
  description: What the data directory held before the run.
  returned: always
  type: str
  sample: empty
  choices: [empty, standby, primary, interrupted, unknown]
system_identifier:
  description: The primary's system identifier (the data directory holds the same one afterwards).
  returned: always
  type: str
  sample: "7441893411834142345"
timeline:
  description: The primary's current timeline.
  returned: always
  type: int
  sample: 1
bytes:
  description: Size of the cloned data directory; 0 when nothing was cloned.
  returned: always
  type: int
  sample: 39281664
seconds:
  description: Wall time of the clone; 0 when nothing was cloned.
  returned: always
  type: float
  sample: 2.4
throughput_bytes_per_second:
  description: RV(bytes) divided by RV(seconds); 0 when nothing was cloned.
  returned: always
  type: int
  sample: 16367360
reconfigured:
  description: An existing standby's configuration was rewritten (or would be, in check mode) without a clone.
  returned: always
  type: bool
log_file:
  description: File holding pg_basebackup's output.
  returned: always
  type: str
  sample: /opt/supabase/volumes/db/pg_basebackup.log
actions:
  description: What the module did (or would do in check mode).
  returned: always
  type: list
  elements: str
  sample: ["clone 10.0.0.11:5433 into /opt/supabase/volumes/db/data"]
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.supabase.plugins.module_utils import datadir
from ansible_collections.selfhost.supabase.plugins.module_utils.oneoff_container import tls_volume
from ansible_collections.selfhost.supabase.plugins.module_utils.pg_tools import ToolRunner
from ansible_collections.selfhost.supabase.plugins.module_utils.postgres_conn import (
    check_port, check_tls, connect, connection_argument_spec, deprecated_option, identify_system, in_recovery, tls_env,
    tls_params)

REFUSALS = {
    datadir.PRIMARY: ("{dir} holds a primary (no standby.signal) of system {found}. It may be a "
                      "promoted former standby: rejoin it instead, or set force: true to wipe it "
                      "and clone {host} again."),
    datadir.INTERRUPTED: ("{dir} holds a half-finished clone from an interrupted run ({marker} "
                          "exists). Set force: true to wipe it and clone again."),
    datadir.UNKNOWN: ("{dir} is not empty and holds no PostgreSQL cluster. Move its files away "
                      "or set force: true to wipe it."),
    "foreign": ("{dir} holds a cluster of system {found}, but the primary {host} is system "
                "{want}: refusing to overwrite another cluster. Check the inventory (is this the "
                "right primary?) or set force: true to wipe it and clone again."),
}


class BaseBackup:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.data_dir = os.path.normpath(self.p["data_dir"])
        self.log_file = self.p["log_file"] or os.path.join(os.path.dirname(self.data_dir), "pg_basebackup.log")
        self.result = dict(changed=False, reconfigured=False, actions=[], bytes=0, seconds=0.0,
                           throughput_bytes_per_second=0, log_file=self.log_file)

    def primary_identity(self):
        conn = connect(self.module, self.p["login_host"], self.p["login_port"],
                       self.p["login_user"], self.p["login_password"],
                       replication=True, application_name="selfhost.supabase.pg_basebackup",
                       timeout=self.p["connect_timeout"], tls=tls_params(self.p))
        try:
            if in_recovery(conn):
                self.module.fail_json(
                    msg=f"login_host {self.p['login_host']}:{self.p['login_port']} is itself a standby "
                        "(in recovery), not a primary. Point login_host at the primary it streams from "
                        "(after a failover, fix the inventory's master group).", **self.result)
            return identify_system(self.module, conn)
        finally:
            conn.close()

    def refuse(self, reason, found=None, want=None):
        self.module.fail_json(msg=REFUSALS[reason].format(
            dir=self.data_dir, found=found, want=want, host=self.p["login_host"],
            marker=datadir.clone_marker(self.data_dir)), **self.result)

    def decide(self, state, found, want):
        """Return True to clone, False to leave alone; fail when it may not clone."""
        if state == datadir.EMPTY:
            return True
        if state == datadir.STANDBY and found == want:
            return False
        if self.p["force"]:
            self.result["actions"].append(f"wipe {self.data_dir} ({state}, force)")
            return True
        if state in (datadir.STANDBY, datadir.PRIMARY) and found != want:
            self.refuse("foreign", found, want)
        self.refuse(state, found, want)

    def command(self, data_dir):
        cmd = ["-D", data_dir, "-h", self.p["login_host"], "-p", str(self.p["login_port"]),
               "-U", self.p["login_user"], "--no-password", "-X", "stream",
               "--checkpoint=fast", "--progress", "--verbose"]
        if self.p["slot_name"]:
            cmd += ["-S", self.p["slot_name"]]
        return cmd

    def clone(self, runner):
        p = self.p
        uid, gid = runner.owner_ids()
        parent = os.path.dirname(self.data_dir)
        os.makedirs(parent, exist_ok=True)
        marker = datadir.clone_marker(self.data_dir)
        with open(marker, "w") as f:
            f.write(f"cloning from {p['login_host']}:{p['login_port']} since {time.ctime()}\n")
        if os.path.isdir(self.data_dir):
            datadir.wipe(self.data_dir)
        else:
            os.makedirs(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        os.chown(self.data_dir, uid, gid)

        runner.note(f"{time.ctime()} pg_basebackup from {p['login_host']}:{p['login_port']}")
        started = time.monotonic()
        with runner.password(p["login_host"], p["login_port"], p["login_user"], p["login_password"]):
            rc, _out = runner.run(["pg_basebackup"] + self.command(self.data_dir), network=True,
                                  tls_volumes=tls_volume(p), env=tls_env(p))
        seconds = time.monotonic() - started
        if rc != 0:
            tail = self.log_tail()
            why = "timed out after %ss" % p["timeout"] if rc is None else f"exited with {rc}"
            self.module.fail_json(msg=f"pg_basebackup {why}; {self.data_dir} is left half-finished "
                                      f"(re-run with force: true). Last lines of {self.log_file}:\n{tail}",
                                  **self.result)
        self.write_standby_config()
        datadir.chown_tree(self.data_dir, uid, gid)
        os.unlink(marker)
        size = datadir.size_bytes(self.data_dir)
        self.result.update(bytes=size, seconds=round(seconds, 3),
                           throughput_bytes_per_second=int(size / seconds) if seconds > 0 else size)

    def write_standby_config(self, dry_run=False):
        p = self.p
        return datadir.write_standby_config(self.data_dir, p["login_host"], p["login_port"], p["login_user"],
                                            p["login_password"], p["application_name"], p["slot_name"],
                                            tls=tls_params(p), dry_run=dry_run)

    def log_tail(self, lines=15):
        try:
            with open(self.log_file, errors="replace") as f:
                text = f.read()[-4000:]
        except OSError:
            return "(no log)"
        # pg_basebackup never prints the password; strip it anyway should a future tool do so.
        return "\n".join(text.splitlines()[-lines:]).replace(self.p["login_password"], "********")

    def run(self):
        state, found = datadir.inspect(self.data_dir)
        sysid, timeline, _lsn = self.primary_identity()
        self.result.update(state_before=state, system_identifier=sysid, timeline=timeline)
        if not self.decide(state, found, sysid):
            if state == datadir.STANDBY and self.write_standby_config(dry_run=True):
                self.result["actions"].append(f"rewrite the standby configuration of {self.data_dir} "
                                              f"for {self.p['login_host']}:{self.p['login_port']}")
                self.result.update(changed=True, reconfigured=True)
                if not self.module.check_mode:
                    self.write_standby_config()
            return self.result
        self.result["actions"].append(
            f"clone {self.p['login_host']}:{self.p['login_port']} into {self.data_dir}")
        self.result["changed"] = True
        if self.module.check_mode:
            return self.result
        binaries = {"pg_basebackup": self.p["pg_basebackup_path"]} if self.p["pg_basebackup_path"] else {}
        self.clone(ToolRunner(self.module, self.data_dir, self.log_file, bin_dir=self.p["bin_dir"], binaries=binaries))
        cloned = datadir.system_identifier(self.data_dir)
        if cloned != sysid:
            self.module.fail_json(msg=f"the clone in {self.data_dir} is system {cloned}, expected {sysid}",
                                  **self.result)
        return self.result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **connection_argument_spec(user="supabase_replication_admin", required=("login_password",),
                                       deprecated_aliases={"login_host": ["primary_host"],
                                                           "login_port": ["primary_port"],
                                                           "login_user": ["replication_user"],
                                                           "login_password": ["replication_password"]}),
            data_dir=dict(type="path", required=True),
            slot_name=dict(type="str"),
            application_name=dict(type="str", default="standby"),
            executor=dict(type="str", choices=["docker", "local"], default="docker"),
            image=dict(type="str"),
            bin_dir=dict(type="path", default="/usr/lib/postgresql/15/bin"),
            pg_basebackup_path=deprecated_option(type="path"),
            os_user=dict(type="str", default="postgres"),
            log_file=dict(type="path"),
            timeout=dict(type="int", default=3600),
            force=dict(type="bool", default=False),
        ),
        required_if=[("executor", "docker", ["image"])],
        mutually_exclusive=[("bin_dir", "pg_basebackup_path")],
        supports_check_mode=True,
    )
    check_port(module, "login_port")
    check_tls(module)
    if module.params["timeout"] <= 0:
        module.fail_json(msg=f"timeout must be a positive number of seconds, got {module.params['timeout']}")
    if not os.path.isabs(module.params["data_dir"]) or os.path.normpath(module.params["data_dir"]) == "/":
        module.fail_json(msg="data_dir must be an absolute path below / (the standby's data directory)")
    module.exit_json(**BaseBackup(module).run())


if __name__ == "__main__":
    main()
