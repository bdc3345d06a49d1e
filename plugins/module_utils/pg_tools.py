# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""The one way the collection's modules run PostgreSQL's own tools
(pg_basebackup, pg_rewind, pg_waldump, pg_controldata) on a data directory.

With executor ``docker`` a tool runs in a one-off container of the database
image (the host needs no PostgreSQL packages); with ``local`` it runs from the
host's binaries.  Either way it runs as the user that owns the data directory,
its output is appended to a log file as it arrives, and a password never
appears on a command line: a container reads it from a password file in
Ansible's private temporary directory on the host (mounted read-only, removed
with that directory), a local tool from its environment.  In check mode the
data directory is mounted read-only and the output goes to Ansible's
temporary directory too, so nothing on the host changes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile

from ansible_collections.selfhost.supabase.plugins.module_utils import datadir
from ansible_collections.selfhost.supabase.plugins.module_utils import oneoff_container

CONTAINER_DATA = "/var/lib/postgresql/data"
CONTAINER_PASSFILE = "/run/selfhost-supabase.pgpass"


class ToolRunner:
    """Runs the tools on one data directory; ``binaries`` maps a tool's name to
    its host path for executor ``local`` (default: ``bin_dir``/name)."""

    def __init__(self, module, data_dir, log_file, bin_dir="/usr/lib/postgresql/15/bin", binaries=None):
        self.module = module
        self.p = module.params
        self.data_dir = data_dir
        self.check_mode = module.check_mode
        self.log_file = os.path.join(module.tmpdir, os.path.basename(log_file)) if self.check_mode else log_file
        self.bin_dir = bin_dir
        self.binaries = binaries or {}
        self.cli = oneoff_container.client(module) if self.p["executor"] == "docker" else None
        self.passfile = None
        self.secret_env = {}
        self._ids = None

    def owner_ids(self):
        """uid and gid of os_user: inside the image (docker), on the host (local)."""
        if self._ids is None:
            if self.cli is not None:
                self._ids = oneoff_container.image_user_ids(self.module, self.cli, self.p["image"], self.p["os_user"])
            else:
                try:
                    user = pwd.getpwnam(self.p["os_user"])
                except KeyError:
                    self.module.fail_json(msg=f"os_user {self.p['os_user']!r} does not exist on this host: name "
                                              "the user that owns the data directory")
                self._ids = (user.pw_uid, user.pw_gid)
        return self._ids

    @contextlib.contextmanager
    def password(self, host, port, user, secret):
        """Let the tools run in the block log in to host:port as user."""
        uid, gid = self.owner_ids()
        private = tempfile.mkdtemp(prefix="pgpass-", dir=self.module.tmpdir)
        try:
            if self.cli is not None:
                passfile = os.path.join(private, "pgpass")
                fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(datadir.passfile_line(host, port, user, secret))
                os.chown(passfile, uid, gid)
                self.secret_env = {"PGPASSFILE": CONTAINER_PASSFILE}
                self.passfile = passfile
            else:
                self.secret_env = {"PGPASSWORD": secret}
            yield
        finally:
            self.passfile = None
            self.secret_env = {}
            shutil.rmtree(private, ignore_errors=True)

    def note(self, line):
        with open(self.log_file, "ab") as log:
            log.write(f"\n== {line}\n".encode())

    def run(self, args, network=False, tls_volumes=None, env=None):
        """Run one tool (args[0] is its name) on the data directory to the end;
        returns (rc, what it printed); rc is None when it ran out of time."""
        uid, gid = self.owner_ids()
        self.note(" ".join(args[:2]))
        start = os.path.getsize(self.log_file)
        env = dict(env or {}, **self.secret_env)
        if self.cli is not None:
            volumes = {self.data_dir: {"bind": CONTAINER_DATA, "mode": "ro" if self.check_mode else "rw"}}
            volumes.update(tls_volumes or {})
            if self.passfile:
                volumes[self.passfile] = {"bind": CONTAINER_PASSFILE, "mode": "ro"}
            cmd = [a.replace(self.data_dir, CONTAINER_DATA) for a in args]
            rc = oneoff_container.run(self.module, self.cli, self.p["image"], cmd, self.log_file, self.p["timeout"],
                                      user=f"{uid}:{gid}", network_mode="host" if network else "none",
                                      environment=env, volumes=volumes)
        else:
            path = self.binaries.get(args[0]) or os.path.join(self.bin_dir, args[0])
            if not os.access(path, os.X_OK):
                self.module.fail_json(msg=f"{path} is not an executable: install PostgreSQL's binaries on this "
                                          "host or use executor: docker")

            def drop_privileges():
                if os.getuid() == 0 and uid != 0:
                    os.setgid(gid)
                    os.setuid(uid)
            with open(self.log_file, "ab") as log:
                try:
                    # Not run_command: the tool's output streams to a log file, as the data directory's
                    # owner (preexec_fn), under a timeout; run_command offers none of these.
                    rc = subprocess.run([path] + list(args[1:]), stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=ansible-bad-function
                                        env=dict(os.environ, **env), cwd="/", preexec_fn=drop_privileges,
                                        timeout=self.p["timeout"], check=False).returncode
                except subprocess.TimeoutExpired:
                    rc = None
        with open(self.log_file, errors="replace") as f:
            f.seek(start)
            return rc, f.read()
