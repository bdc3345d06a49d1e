# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Options every module of the collection that logs in to PostgreSQL shares
(module_utils/postgres_conn.connection_argument_spec)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  login_password:
    description: Password of O(login_user). Never logged or returned.
    type: str
  login_db:
    description: Database to connect to.
    type: str
    default: postgres
"""
