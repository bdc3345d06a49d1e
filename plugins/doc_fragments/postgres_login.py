# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Login and TLS options every module of the collection that connects to PostgreSQL
shares (module_utils/postgres_conn.connection_argument_spec), named as
community.postgresql names them; modules of the action group selfhost.supabase.postgres
take them from one module_defaults entry."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  login_host:
    description: Address of the server to connect to, as reachable from the target host.
    type: str
  login_port:
    description: Port of that server.
    type: int
    default: 5432
  login_user:
    description: Role to log in as.
    type: str
    default: supabase_admin
  login_password:
    description: Password of O(login_user). Travels in a password file or the connection, never on a command line; never logged or returned.
    type: str
  login_db:
    description: Database to connect to.
    type: str
    default: postgres
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 5
  ssl_mode:
    description:
      - libpq C(sslmode) of the connection (and, for the modules that configure a standby, of the
        C(primary_conninfo) it is given).
      - V(verify-full) encrypts and checks that the server's certificate was signed by O(ca_cert)
        and names the host connected to.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: prefer
  ca_cert:
    description:
      - CA certificate (PEM) that signed the server's certificate; required by the C(verify-*) modes.
      - For a standby, the same path must hold it inside the database container (the standby reads
        it there); tool containers get it mounted at that path.
      - O(ssl_rootcert) is community.postgresql's alias of it. The alias O(ssl_root_cert) is deprecated
        and will be removed in 1.0.0; use O(ca_cert).
    type: path
    aliases: [ssl_rootcert, ssl_root_cert]
"""
