#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_rejoin
short_description: Turn a stopped former primary into a standby of the current primary
version_added: 0.1.0
description:
  - Works on the data directory of a stopped server that was a primary (or a standby that
    fell behind a timeline switch). Asks C(pg_rewind --dry-run) where its history and the
    current primary's diverged, and reads the end of its own WAL with C(pg_waldump).
  - The WAL between those two points was written only on this server; a rewind discards it.
    When there is any, the module refuses unless O(discard_wal) repeats that exact range, so
    an operator confirms what is lost, not just "yes".
  - Asks the current primary for a C(CHECKPOINT) first (not in check mode), because C(pg_rewind)
    reads its timeline from its control file, which a recently promoted server updates only at its
    next checkpoint.
  - Then runs C(pg_rewind) (only when needed) and writes the standby configuration
    (C(standby.signal), C(primary_conninfo), C(primary_slot_name)); the next start of the
    server follows the current primary.
  - When C(pg_rewind) cannot work (the WAL it needs is gone, or this server and the current primary
    were each promoted to the same timeline number, which pg_rewind takes for one history), fails
    with RV(rewind_failed=true) so that the caller can clone the primary again instead
    (selfhost.supabase.pg_basebackup with force), once the range to discard is confirmed.
  - By default runs the database image's own tools in one-off containers on the target host.
author:
  - selfhost.supabase contributors (!UNKNOWN)
attributes:
  check_mode:
    support: full
    details:
      - Runs the dry run on the data directory mounted read-only and reports the range that would be
        discarded; changes nothing on this host or on the current primary.
      - The primary is not asked for a C(CHECKPOINT); when its control file still names an older
        timeline, the divergence is read from its timeline history instead.
      - The tools' output goes to Ansible's temporary directory, not to O(log_file).
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - selfhost.supabase.postgres_login
options:
  data_dir:
    description: Host path of the stopped server's data directory.
    type: path
    required: true
  login_host:
    description:
      - Address of the current primary, as reachable from this host.
      - The alias O(source_host) is deprecated and will be removed in 1.0.0; use O(login_host).
    type: str
    required: true
    aliases: [source_host]
  login_port:
    description:
      - Port of the current primary.
      - The alias O(source_port) is deprecated and will be removed in 1.0.0; use O(login_port).
    type: int
    default: 5432
    aliases: [source_port]
  login_user:
    description:
      - Superuser on the current primary (C(pg_rewind) reads its files through SQL).
      - The alias O(source_user) is deprecated and will be removed in 1.0.0; use O(login_user).
    type: str
    default: supabase_admin
    aliases: [source_user]
  login_password:
    description:
      - Password of O(login_user). Travels in a password file, never on a command line.
      - The alias O(source_password) is deprecated and will be removed in 1.0.0; use O(login_password).
    type: str
    required: true
    aliases: [source_password]
  replication_user:
    description:
      - Role with the REPLICATION attribute the standby streams as, written into C(primary_conninfo).
      - Not the login, which is O(login_user). M(selfhost.supabase.pg_basebackup), which logs in as the
        role the standby streams as, takes it as C(login_user).
    type: str
    default: supabase_replication_admin
  replication_password:
    description:
      - Password of O(replication_user), written into C(primary_conninfo).
      - Not the login's, which is O(login_password). M(selfhost.supabase.pg_basebackup) takes it as
        C(login_password).
    type: str
    required: true
  slot_name:
    description: Physical slot on the current primary this standby streams from (create it first).
    type: str
  application_name:
    description: Name the standby reports to the primary.
    type: str
    default: standby
  discard_wal:
    description:
      - Confirms that the WAL range this server wrote after the histories diverged is discarded,
        as C(START-END) exactly as the module reported it (RV(discard_range)).
    type: str
  container:
    description:
      - Name of the database container that serves O(data_dir) on this host; the module refuses
        while it runs. Only with O(executor=docker).
    type: str
    default: supabase-db
  executor:
    description:
      - C(docker) runs the tools of O(image) in one-off containers; C(local) runs the host's own
        from O(bin_dir) as O(os_user).
    type: str
    choices: [docker, local]
    default: docker
  image:
    description: Database image whose tools run (required with O(executor=docker)).
    type: str
  bin_dir:
    description: Directory of the host's PostgreSQL binaries (O(executor=local)).
    type: path
    default: /usr/lib/postgresql/15/bin
  os_user:
    description: User that owns the data directory (inside the image with O(executor=docker)).
    type: str
    default: postgres
  log_file:
    description: Where the tools' output goes. Default, C(pg_rewind.log) beside O(data_dir).
    type: path
  timeout:
    description: Seconds each tool may run.
    type: int
    default: 1800
requirements:
  - psycopg2 (Debian package python3-psycopg2)
  - docker (Debian package python3-docker) with O(executor=docker)
"""

EXAMPLES = r"""
- name: See what a rejoin of the old primary would discard
  selfhost.supabase.pg_rejoin:
    data_dir: /opt/supabase/volumes/db/data
    image: supabase/postgres:15.8.1.085
    login_host: 10.0.0.12
    login_port: 5433
    login_password: "{{ cluster_postgres_password }}"
    replication_password: "{{ cluster_replication_password }}"
    slot_name: vm1
    application_name: vm1
  check_mode: true
  register: preview

- name: Rejoin it, discarding exactly that range
  selfhost.supabase.pg_rejoin:
    data_dir: /opt/supabase/volumes/db/data
    image: supabase/postgres:15.8.1.085
    login_host: 10.0.0.12
    login_port: 5433
    login_password: "{{ cluster_postgres_password }}"
    replication_password: "{{ cluster_replication_password }}"
    slot_name: vm1
    application_name: vm1
    discard_wal: "{{ preview.discard_range }}"
"""

RETURN = r"""
rewind_needed:
  description: Whether the histories diverged so that C(pg_rewind) had to (or has to) run.
  returned: always
  type: bool
rewound:
  description: Whether C(pg_rewind) ran and finished.
  returned: always
  type: bool
rewind_failed:
  description:
    - C(pg_rewind) could not work (for instance, WAL it needs was removed, or this server and the
      source were each promoted to the same timeline); clone instead.
  returned: on failure of the rewind, and in check mode when it cannot work
  type: bool
diverged_lsn:
  description: Where this server's history and the current primary's part.
  returned: when the dry run found it
  type: str
  sample: 0/3000148
local_end_lsn:
  description: End of the WAL this server holds.
  returned: always
  type: str
discard_range:
  description: C(START-END) of the WAL only this server wrote, empty when nothing is discarded.
  returned: always
  type: str
  sample: 0/3000148-0/30A1F20
discard_bytes:
  description: Size of that range in bytes.
  returned: always
  type: int
source_timeline:
  description: Timeline of the current primary.
  returned: always
  type: int
log_file:
  description: File holding the tools' output.
  returned: always
  type: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.supabase.plugins.module_utils import datadir
from ansible_collections.selfhost.supabase.plugins.module_utils.oneoff_container import tls_volume
from ansible_collections.selfhost.supabase.plugins.module_utils.pg_tools import ToolRunner
from ansible_collections.selfhost.supabase.plugins.module_utils.postgres_conn import (
    Cursor, check_port, check_tls, connect, connection_argument_spec, in_recovery, lsn_to_int, server_timeline,
    tls_params)

LSN = r"([0-9A-Fa-f]+/[0-9A-Fa-f]+)"


class Rejoin:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.data_dir = os.path.normpath(self.p["data_dir"])
        self.log_file = self.p["log_file"] or os.path.join(os.path.dirname(self.data_dir), "pg_rewind.log")
        self.result = dict(changed=False, rewind_needed=False, rewound=False, discard_range="",
                           discard_bytes=0, local_end_lsn="", log_file=self.log_file)
        self.runner = ToolRunner(module, self.data_dir, self.log_file, bin_dir=self.p["bin_dir"])
        self.cli = self.runner.cli
        # Where the source's history left each timeline; whether its control file lags
        # behind its timeline (check mode, see check_source).
        self.source_points = {}
        self.control_lags = False

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, **dict(self.result, **extra))

    # ------------------------------------------------------------ checks
    def check_stopped(self):
        if self.cli is None:
            pid_file = os.path.join(self.data_dir, "postmaster.pid")
            if os.path.exists(pid_file):
                with open(pid_file) as f:
                    pid = int(f.readline().strip() or 0)
                if pid and os.path.exists(f"/proc/{pid}"):
                    self.fail(f"a server (pid {pid}) runs on {self.data_dir}: stop it first")
            return
        try:
            container = self.cli.containers.get(self.p["container"])
        except Exception:  # docker.errors.NotFound: nothing serves the directory
            return
        if container.status == "running":
            self.fail(f"container {self.p['container']} is running on {self.data_dir}: stop it first "
                      f"(docker stop {self.p['container']}); a running server cannot be rewound")

    def check_source(self, sysid):
        p = self.p
        conn = connect(self.module, p["login_host"], p["login_port"], p["login_user"], p["login_password"],
                       p["login_db"], timeout=p["connect_timeout"], application_name="selfhost.supabase.pg_rejoin",
                       tls=tls_params(p))
        try:
            cur = Cursor(self.module, conn, f"source {p['login_host']}:{p['login_port']}", self.result)
            if in_recovery(conn):
                self.fail(f"source {p['login_host']}:{p['login_port']} is a standby, not the primary: "
                          "point login_host at the current primary")
            cur.execute("SELECT system_identifier::text FROM pg_control_system()")
            source_sysid = cur.fetchone()[0]
            self.result["source_timeline"] = timeline = server_timeline(cur, False)
            if timeline > 1:
                cur.execute("SELECT pg_read_file(%s)", ("pg_wal/%08X.history" % timeline,))
                self.source_points = timeline_switch_points(cur.fetchone()[0])
            if not self.module.check_mode:
                # pg_rewind takes the source's timeline from its control file, which a
                # recently promoted server updates only at its next checkpoint.
                cur.execute("CHECKPOINT")
            else:
                # Check mode asks the source for nothing that changes it: when its control
                # file still names an older timeline, the dry run cannot see the divergence,
                # and the source's timeline history tells where it left ours.
                cur.execute("SELECT timeline_id FROM pg_control_checkpoint()")
                self.control_lags = cur.fetchone()[0] != timeline
        finally:
            conn.close()
        if source_sysid != sysid:
            self.fail(f"{self.data_dir} holds system {sysid} but {p['login_host']} is system {source_sysid}: "
                      "they are different clusters and cannot be rejoined. Check the host names, or clone "
                      "the primary again (pg_basebackup with force).")

    # ------------------------------------------------------------- tools
    def tool(self, args, network=False):
        """Run one of PostgreSQL's tools on the data directory; returns (rc, output)."""
        return self.runner.run(args, network=network, tls_volumes=tls_volume(self.p))

    def conninfo(self):
        p = self.p
        return " ".join(f"{k}={datadir.conninfo_quote(v)}" for k, v in [
            ("host", p["login_host"]), ("port", p["login_port"]), ("user", p["login_user"]),
            ("dbname", p["login_db"]), ("connect_timeout", p["connect_timeout"]), *tls_params(p)])

    def local_end(self):
        """End of this server's WAL: pg_waldump from its last checkpoint until the records stop."""
        rc, out = self.tool(["pg_controldata", self.data_dir])
        if rc != 0:
            self.fail(f"pg_controldata failed on {self.data_dir} ({rc}): {out.strip()[-500:]}")
        checkpoint = re.search(r"Latest checkpoint location:\s+" + LSN, out)
        tli = re.search(r"Latest checkpoint's TimeLineID:\s+(\d+)", out)
        if not checkpoint or not tli:
            self.fail(f"pg_controldata did not show the latest checkpoint of {self.data_dir}: {out.strip()[-500:]}")
        end = checkpoint.group(1)
        _rc, out = self.tool(["pg_waldump", "--path", os.path.join(self.data_dir, "pg_wal"), "--timeline",
                              tli.group(1), "--start", end, "--quiet"])
        # "error in WAL record at 0/3000148: invalid record length at 0/3000180: wanted 24, got 0"
        stop = re.search(r"error in WAL record at " + LSN + r": .*? at " + LSN, out)
        if stop:
            end = stop.group(2)
        else:
            last = re.search(r"error in WAL record at " + LSN, out)
            end = last.group(1) if last else end
        return end, int(tli.group(1))

    # --------------------------------------------------------------- run
    def write_standby_config(self, dry_run=False):
        p = self.p
        return datadir.write_standby_config(self.data_dir, p["login_host"], p["login_port"], p["replication_user"],
                                            p["replication_password"], p["application_name"], p["slot_name"],
                                            tls=tls_params(p), dry_run=dry_run)

    def run(self):
        state, sysid = datadir.inspect(self.data_dir)
        if state not in (datadir.PRIMARY, datadir.STANDBY):
            self.fail(f"{self.data_dir} holds no PostgreSQL cluster to rejoin ({state}): clone the primary "
                      "into it instead (selfhost.supabase.pg_basebackup).")
        self.check_stopped()
        self.check_source(sysid)
        p = self.p
        with self.runner.password(p["login_host"], p["login_port"], p["login_user"], p["login_password"]):
            result = self.rejoin()
        if not self.module.check_mode:
            uid, gid = self.runner.owner_ids()
            datadir.chown_tree(self.data_dir, uid, gid)
        return result

    def rejoin(self):
        end, local_tli = self.local_end()
        self.result["local_end_lsn"] = end
        rc, out = self.tool(["pg_rewind", "--dry-run", "--progress", "-D", self.data_dir,
                             "--source-server", self.conninfo()], network=True)
        diverged = re.search(r"servers diverged at WAL location " + LSN, out)
        if rc != 0:
            self.fail(f"pg_rewind --dry-run failed ({rc}); see {self.log_file}: {self.scrub(out)[-800:]}",
                      rewind_failed=True)
        needed = "no rewind required" not in out
        diverged = diverged.group(1) if diverged else None
        switch = self.source_points.get(local_tli) if self.control_lags else None
        if switch is not None:
            # The source left our timeline at `switch`: what we wrote past it is ours alone.
            diverged, needed = switch, lsn_to_int(end) > lsn_to_int(switch)
        fork = self.fork_on_the_same_timeline(local_tli)
        if fork:
            diverged, needed = fork, True
        self.result["rewind_needed"] = needed
        if diverged:
            self.result["diverged_lsn"] = diverged
            lost = lsn_to_int(end) - lsn_to_int(diverged)
            if needed and lost > 0:
                self.result.update(discard_range=f"{diverged}-{end}", discard_bytes=lost)
        rng = self.result["discard_range"]
        if rng and self.p["discard_wal"] != rng and not self.module.check_mode:
            self.fail(f"rejoining discards the WAL this server wrote after the histories diverged: {rng} "
                      f"({self.result['discard_bytes']} bytes, on timeline {self.result['source_timeline'] - 1} "
                      f"or earlier). Whatever was committed there exists nowhere else; save it first if it "
                      f"matters, then confirm with discard_wal: {rng}")
        if fork and self.module.check_mode:
            self.result.update(changed=True, rewind_failed=True)
        if self.module.check_mode:
            self.result["changed"] = needed or self.write_standby_config(dry_run=True)
            return self.result
        if fork:
            self.fail(f"this server and {self.p['login_host']} were each promoted to timeline {local_tli} on their "
                      f"own (they part at {fork}): pg_rewind cannot join two histories that share a timeline "
                      "number. Clone the primary again instead (pg_basebackup with force: true).",
                      rewind_failed=True)
        if needed:
            rc, out = self.tool(["pg_rewind", "--progress", "-D", self.data_dir, "--source-server", self.conninfo()],
                                network=True)
            if rc != 0:
                self.fail(f"pg_rewind failed ({rc}): {self.scrub(out)[-800:]}. Clone the primary again "
                          "instead (pg_basebackup with force: true); see " + self.log_file, rewind_failed=True)
            self.result.update(rewound=True, changed=True)
        if self.write_standby_config():
            self.result["changed"] = True
        return self.result

    def fork_on_the_same_timeline(self, local_tli):
        """Where this server and the source part when both were promoted to the same timeline
        on their own (each wrote its own end of recovery there); None otherwise."""
        if local_tli < 2 or local_tli != self.result["source_timeline"]:
            return None
        # A standby that followed the source onto this timeline holds the source's history.
        if datadir.control_data(self.data_dir)["state"] not in ("shut down", "in production"):
            return None
        try:
            with open(os.path.join(self.data_dir, "pg_wal", "%08X.history" % local_tli)) as f:
                local = timeline_switch_points(f.read())
        except OSError:
            local = {}
        starts = [point for point in (local.get(local_tli - 1), self.source_points.get(local_tli - 1)) if point]
        return min(starts, key=lsn_to_int) if starts else None

    def scrub(self, text):
        for secret in (self.p["login_password"], self.p["replication_password"]):
            text = text.replace(secret, "********")
        return text


def timeline_switch_points(history):
    """{timeline: LSN where the server left it} from a timeline history file."""
    points = {}
    for line in history.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit() and re.fullmatch(LSN, fields[1]):
            points[int(fields[0])] = fields[1]
    return points


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **connection_argument_spec(required=("login_password",),
                                       deprecated_aliases={"login_host": ["source_host"], "login_port": ["source_port"],
                                                           "login_user": ["source_user"],
                                                           "login_password": ["source_password"]}),
            data_dir=dict(type="path", required=True),
            replication_user=dict(type="str", default="supabase_replication_admin"),
            replication_password=dict(type="str", required=True, no_log=True),
            slot_name=dict(type="str"),
            application_name=dict(type="str", default="standby"),
            discard_wal=dict(type="str"),
            container=dict(type="str", default="supabase-db"),
            executor=dict(type="str", choices=["docker", "local"], default="docker"),
            image=dict(type="str"),
            bin_dir=dict(type="path", default="/usr/lib/postgresql/15/bin"),
            os_user=dict(type="str", default="postgres"),
            log_file=dict(type="path"),
            timeout=dict(type="int", default=1800),
        ),
        required_if=[("executor", "docker", ["image"])],
        supports_check_mode=True,
    )
    check_port(module, "login_port")
    check_tls(module)
    p = module.params
    if p["timeout"] <= 0:
        module.fail_json(msg=f"timeout must be a positive number of seconds, got {p['timeout']}")
    if not os.path.isabs(p["data_dir"]) or os.path.normpath(p["data_dir"]) == "/":
        module.fail_json(msg="data_dir must be an absolute path below / (the former primary's data directory)")
    if p["discard_wal"] and not re.fullmatch(LSN + "-" + LSN, p["discard_wal"]):
        module.fail_json(msg=f"discard_wal must be START-END as the module reported it (e.g. 0/3000148-0/30A1F20), "
                             f"got {p['discard_wal']!r}")
    if p["slot_name"] and not re.fullmatch(r"[a-z0-9_]{1,63}", p["slot_name"]):
        module.fail_json(msg=f"slot_name {p['slot_name']!r} is not a valid slot name: lower-case letters, digits "
                             "and underscores, at most 63")
    module.exit_json(**Rejoin(module).run())


if __name__ == "__main__":
    main()
