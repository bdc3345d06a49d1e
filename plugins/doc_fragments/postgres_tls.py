# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""TLS options of the modules that connect to a primary and configure a standby
(module_utils/postgres_conn.tls_argument_spec)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  ssl_mode:
    description:
      - libpq C(sslmode) of the connections to the primary, and of the C(primary_conninfo) the
        standby is given.
      - V(verify-full) encrypts and checks that the primary's certificate was signed by
        O(ssl_root_cert) and names the host connected to.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: prefer
  ssl_root_cert:
    description:
      - CA certificate (PEM) that signed the primary's certificate; required by the C(verify-*) modes.
      - The same path must hold it inside the database container (the standby reads it there), and
        tool containers get it mounted at that path.
    type: path
"""
