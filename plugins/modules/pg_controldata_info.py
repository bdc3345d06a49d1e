#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_controldata_info
short_description: Read a PostgreSQL data directory's control file (state, last checkpoint, timeline)
version_added: 0.1.0
description:
  - Reads C(global/pg_control) of a data directory directly, without PostgreSQL binaries or a
    running server, the way C(pg_controldata) shows it.
  - A switchover reads the old primary's final checkpoint after a clean shutdown, and waits for
    the new primary to have replayed past it before promoting it.
  - Only reads.  Stopping the server first (a switchover stops the old primary's container) is
    the playbook's step, with M(community.docker.docker_container).
  - Called C(selfhost.supabase.pg_controldata) before; that name is redirected here, with a deprecation
    warning, until 1.0.0.
author:
  - selfhost.supabase contributors (!UNKNOWN)
attributes:
  check_mode:
    support: full
    details: Only reads, in check mode as otherwise.
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  data_dir:
    description: Host path of the data directory.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Read where the stopped primary's WAL ends
  selfhost.supabase.pg_controldata_info:
    data_dir: /opt/supabase/volumes/db/data
  register: control
"""

RETURN = r"""
state:
  description: Cluster state as C(pg_controldata) names it (V(shut down) after a clean shutdown).
  returned: always
  type: str
  sample: shut down
clean_shutdown:
  description: Whether the server was shut down cleanly (as a primary or as a standby).
  returned: always
  type: bool
checkpoint_lsn:
  description: Location of the latest checkpoint record (after a clean shutdown, the last record written).
  returned: always
  type: str
  sample: 0/3000148
after_checkpoint_lsn:
  description: One byte past the start of that record; a standby that replayed up to here holds all of it.
  returned: always
  type: str
redo_lsn:
  description: REDO location of the latest checkpoint.
  returned: always
  type: str
timeline:
  description: Timeline of the latest checkpoint.
  returned: always
  type: int
system_identifier:
  description: Database system identifier.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.supabase.plugins.module_utils import datadir
from ansible_collections.selfhost.supabase.plugins.module_utils.postgres_conn import int_to_lsn as lsn


def main():
    module = AnsibleModule(argument_spec=dict(data_dir=dict(type="path", required=True)),
                           supports_check_mode=True)
    data_dir = module.params["data_dir"]
    control = os.path.join(data_dir, "global", "pg_control")
    if not os.path.isfile(control):
        module.fail_json(msg=f"{control} does not exist: {data_dir} is not a PostgreSQL data directory")
    try:
        info = datadir.control_data(data_dir)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot read {control}: {exc}")
    module.exit_json(changed=False, state=info["state"],
                     clean_shutdown=info["state"] in ("shut down", "shut down in recovery"),
                     checkpoint_lsn=lsn(info["checkpoint"]), after_checkpoint_lsn=lsn(info["checkpoint"] + 1),
                     redo_lsn=lsn(info["redo"]), timeline=info["timeline"],
                     system_identifier=info["system_identifier"])


if __name__ == "__main__":
    main()
