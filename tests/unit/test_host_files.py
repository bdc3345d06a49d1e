"""Which wanted files a host lacks or holds otherwise (filter stale_files), over a table of
what one find of the host returned."""

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
from ansible_collections.selfhost.supabase.plugins.filter.host_files import stale_files  # noqa: E402

ENV = {"dest": "/opt/supabase/.env", "checksum": "aa", "mode": "0600", "owner": "root", "group": "root"}
KEY = {"dest": "/opt/supabase/volumes/db/tls/server.key", "checksum": "bb", "mode": "0600", "owner": 105,
       "group": "106"}
DIR = {"path": "/opt/supabase/config/", "mode": "0755", "owner": "root", "group": "root"}


def found(path, checksum=None, mode="0600", user="root", uid=0, group="root", gid=0):
    entry = {"path": path, "mode": mode, "pw_name": user, "uid": uid, "gr_name": group, "gid": gid}
    if checksum:
        entry["checksum"] = checksum
    return entry


SAME_ENV = found("/opt/supabase/.env", "aa")
SAME_KEY = found("/opt/supabase/volumes/db/tls/server.key", "bb", user="postgres", uid=105, group="postgres",
                 gid=106)
SAME_DIR = found("/opt/supabase/config", mode="0755")


@pytest.mark.parametrize("wanted, host, stale", [
    # Everything as wanted: nothing to write (owners by name, by number, a directory's trailing slash).
    ([ENV, KEY, DIR], [SAME_ENV, SAME_KEY, SAME_DIR], []),
    # A first deploy: the host has none of them.
    ([ENV, KEY, DIR], [], [ENV, KEY, DIR]),
    # Content changed on the controller (a rotated secret).
    ([ENV, KEY], [found("/opt/supabase/.env", "zz"), SAME_KEY], [ENV]),
    # Someone loosened the mode of the secrets file.
    ([ENV], [found("/opt/supabase/.env", "aa", mode="0644")], [ENV]),
    # The key belongs to another user than the database's (uid 105).
    ([KEY], [found(KEY["dest"], "bb", user="nobody", uid=65534, group="postgres", gid=106)], [KEY]),
    ([KEY], [found(KEY["dest"], "bb", user="postgres", uid=105, group="root", gid=0)], [KEY]),
    # A directory's mode changed.
    ([DIR], [found("/opt/supabase/config", mode="0700")], [DIR]),
    # Modes compare as numbers whatever their spelling.
    ([dict(ENV, mode="600")], [SAME_ENV], []),
    # No checksum wanted (a source not made yet in check mode): judged by mode and owner only.
    ([dict(ENV, checksum="")], [found("/opt/supabase/.env", "zz")], []),
    # Other entries of the find (unrelated files) change nothing.
    ([ENV], [SAME_ENV, found("/opt/supabase/other", "cc")], []),
])
def test_stale_entries_are_the_missing_and_the_different(wanted, host, stale):
    assert stale_files(wanted, host) == stale


def test_other_keys_of_an_entry_are_returned_unchanged():
    entry = dict(ENV, notify="Restart database", src="/ctl/env.j2")
    assert stale_files([entry], []) == [entry]


@pytest.mark.parametrize("wanted, host", [
    ("not a list", []),
    ([ENV], None),
    (["/opt/supabase/.env"], []),
    ([{"mode": "0644"}], []),
    ([dict(ENV, mode="rw-r--r--")], [SAME_ENV]),
])
def test_bad_input_is_a_clear_error(wanted, host):
    with pytest.raises(AnsibleFilterError, match="stale_files"):
        stale_files(wanted, host)
