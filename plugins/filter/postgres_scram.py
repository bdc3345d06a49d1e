# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Whether a password matches a PostgreSQL SCRAM-SHA-256 verifier (pg_authid.rolpassword),
so that a deploy that changes nothing reads the roles once instead of setting each
password again."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from ansible.errors import AnsibleFilterError

# Documentation: scram_verifies.yml beside this file.


def scram_verifies(password, verifier):
    """True when `verifier` (SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey) was made from
    `password`; false for any other verifier (none, md5, malformed)."""
    if not isinstance(password, str):
        raise AnsibleFilterError("scram_verifies: the password must be a string")
    if not isinstance(verifier, str) or not verifier.startswith("SCRAM-SHA-256$"):
        return False
    try:
        head, keys = verifier[len("SCRAM-SHA-256$"):].split("$", 1)
        iterations, salt = head.split(":", 1)
        stored_key, server_key = keys.split(":", 1)
        salt_bytes = base64.b64decode(salt, validate=True)
        stored = base64.b64decode(stored_key, validate=True)
        server = base64.b64decode(server_key, validate=True)
        rounds = int(iterations)
    except (ValueError, binascii.Error):
        return False
    if rounds < 1 or rounds > 10_000_000:
        return False
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt_bytes, rounds)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_mine = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), stored) and hmac.compare_digest(server_mine, server)


class FilterModule:
    def filters(self):
        return {"scram_verifies": scram_verifies}
