"""The backup files as the roles render them (two database hosts, a repository
host and S3, no VM): pgBackRest on each side of the TLS link, archiving in
postgresql.conf, the backup command and its timers; and bad backup settings
refused by the cluster role's checks before anything changes."""

import configparser
import os
import shutil
import subprocess

import pytest

from render import BIN, ROOT, render, rendered_once

S3_SECRET = "render-s3-key-secret-0123456789"


def conf(path):
    """pgBackRest's ini file; a key given more than once (tls-server-auth) keeps every value."""
    sections, current = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        current.setdefault(key, []).append(value)
    return {name: {k: v[0] if len(v) == 1 else v for k, v in body.items()} for name, body in sections.items()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return rendered_once("backup", tmp_path_factory)


@pytest.fixture(scope="module")
def cipher(rendered):
    import yaml
    return yaml.safe_load((rendered / "secrets" / "supabase-secrets.yml").read_text())["PGBACKREST_CIPHER_PASS"]


def test_a_database_host_pushes_to_the_repository_host_over_tls_and_to_s3_encrypted(rendered, cipher):
    for host in ("vm1", "vm2"):
        c = conf(rendered / host / "pgbackrest.conf")
        g = c["global"]
        assert (g["repo1-host"], g["repo1-host-type"], g["repo1-host-port"]) == ("vm3", "tls", "8432")
        assert g["repo1-host-ca-file"].endswith("/ca.crt") and g["repo1-host-cert-file"].endswith("/pgbackrest.crt")
        # The repository host's passphrase stays there; S3's is needed here (this host writes to S3).
        assert "repo1-cipher-pass" not in g
        assert (g["repo2-type"], g["repo2-s3-bucket"], g["repo2-cipher-type"]) == ("s3", "render-bucket", "aes-256-cbc")
        assert g["repo2-cipher-pass"] == cipher and len(cipher) >= 40
        assert g["repo2-s3-key-secret"] == S3_SECRET and g["repo2-path"] == "/supabase"
        assert (g["archive-async"], g["compress-type"], g["process-max"]) == ("y", "lz4", "2")
        assert g["spool-path"] == "/var/lib/pgbackrest-local/spool"
        # Only the repository host may drive this host's server, for this stanza.
        assert g["tls-server-auth"] == "vm3=supabase"
        assert c["supabase"] == {"pg1-path": "/var/lib/postgresql/data", "pg1-socket-path": "/var/run/postgresql",
                                 "pg1-port": "5432", "pg1-user": "supabase_admin"}


def test_the_repository_host_holds_the_repository_and_backs_up_whichever_host_is_primary(rendered, cipher):
    c = conf(rendered / "vm3" / "repository.conf")
    g = c["global"]
    assert (g["repo1-path"], g["repo1-cipher-type"], g["repo1-cipher-pass"]) == ("/var/lib/pgbackrest", "aes-256-cbc",
                                                                                 cipher)
    assert (g["repo1-retention-full"], g["repo1-retention-diff"]) == ("2", "7")
    assert g["repo2-type"] == "s3" and g["repo2-retention-full"] == "2"
    assert g["tls-server-address"] == "10.20.0.13"
    assert sorted(g["tls-server-auth"]) == ["vm1=supabase", "vm2=supabase", "vm3=supabase"]
    stanza = c["supabase"]
    assert [stanza[f"pg{i}-host"] for i in (1, 2)] == ["vm1", "vm2"]
    assert {stanza[f"pg{i}-host-type"] for i in (1, 2)} == {"tls"}


def test_every_database_host_archives_through_pgbackrest_when_it_is_the_primary(rendered):
    for host in ("vm1", "vm2"):
        text = (rendered / host / "postgresql.conf").read_text()
        assert "archive_mode = on\n" in text
        assert "archive_command = 'pgbackrest --stanza=supabase archive-push %p'" in text
    dockerfile = (rendered / "vm1" / "Dockerfile").read_text()
    assert "apt-get install -y --no-install-recommends pgbackrest" in dockerfile
    assert "FROM selfhost-lab/" not in dockerfile and "\nFROM supabase/postgres:" in dockerfile
    # In auto mode Patroni's image builds on the one with pgBackRest (archive_command runs under Patroni too).
    patroni = (rendered / "vm1" / "patroni-Dockerfile").read_text()
    assert "\nFROM selfhost-supabase/db-pgbackrest:" in patroni


def test_patroni_builds_a_replica_from_the_first_repository_then_from_the_primary(rendered):
    import yaml
    for host in ("vm1", "vm2"):
        pg = yaml.safe_load((rendered / host / "patroni-patroni.yml").read_text())["postgresql"]
        assert pg["create_replica_methods"] == ["pgbackrest", "basebackup"]
        assert pg["pgbackrest"] == {"command": "pgbackrest --stanza=supabase --repo=1 --delta --log-level-console=warn restore",
                                    "keep_data": True, "no_params": True}


def test_the_repository_port_is_closed_to_every_other_address(rendered):
    rules = (rendered / "vm1" / "firewall.nft").read_text()
    assert "set backup_ipv4" in rules and "elements = { 10.20.0.11, 10.20.0.12, 10.20.0.13 }" in rules
    assert "tcp dport 8432 ip saddr @backup_ipv4 accept" in rules and "tcp dport 8432 drop" in rules
    if shutil.which("nft") and os.geteuid() == 0:
        res = subprocess.run(["nft", "--check", "--file", str(rendered / "vm1" / "firewall.nft")], capture_output=True,
                             text=True)
        assert res.returncode == 0, res.stderr


def test_the_backup_command_and_its_timers_are_valid(rendered):
    script = rendered / "vm3" / "selfhost-supabase-backup.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert 'repos=${2:-1 2}' in text and "runuser -u pgbackrest" in text
    timer = configparser.ConfigParser(strict=False)
    timer.read_string((rendered / "vm3" / "selfhost-supabase-backup.timer").read_text())
    assert timer["Timer"]["OnCalendar"] == "*-*-* 00,02..23:30:00"
    assert timer["Timer"]["Unit"] == "selfhost-supabase-backup@incr.service"
    if shutil.which("systemd-analyze"):
        for expression in ("Sun *-*-* 01:00:00", "Mon..Sat *-*-* 01:00:00", "*-*-* 00,02..23:30:00"):
            res = subprocess.run(["systemd-analyze", "calendar", expression], capture_output=True, text=True)
            assert res.returncode == 0, res.stderr
    # A database host's copy backs up only where the primary is (S3 alone: no repository host).
    db_script = (rendered / "vm1" / "selfhost-supabase-backup.sh").read_text()
    assert "pg_is_in_recovery" in db_script


def test_with_s3_alone_the_database_hosts_back_up_themselves(tmp_path):
    res = render("backup", tmp_path, "-e", "backup_repository_group=nobody")
    assert res.returncode == 0, res.stdout[-3000:]
    g = conf(tmp_path / "vm1" / "pgbackrest.conf")["global"]
    assert g["repo1-type"] == "s3" and "repo1-host" not in g and "tls-server-address" not in g
    assert g["repo1-retention-full"] == "2"
    script = (tmp_path / "vm1" / "selfhost-supabase-backup.sh").read_text()
    assert "repo=${2:-1}" in script and "not the primary, no backup" in script
    assert subprocess.run(["sh", "-n", str(tmp_path / "vm1" / "selfhost-supabase-backup.sh")]).returncode == 0


REFUSED = [
    ("S3 without its credentials", ['{"backup_s3": {"bucket": "b", "endpoint": "e", "region": "r"}}'],
     "backup_s3 has no credentials: set key and key_secret"),
    ("S3 with a key it does not know", ['{"backup_s3": {"bucket": "b", "endpoint": "e", "region": "r", '
                                        '"key": "k", "key_secret": "s", "secret": "x"}}'], "backup_s3 has secret"),
    ("retention 0", ["backup_retention_diff=0"], "0 would keep no backup"),
    ("a repository host that is also a database host", ["backup_repository_group=replica"],
     "vm2 is in the replica group and is also a database host"),
    ("a stanza with a space", ["backup_stanza='my cluster'"], "letters, digits, - and _ only"),
    ("an unknown compression", ["backup_compress_type=xz"], "lz4, zst, gz, bz2 or none"),
]


@pytest.mark.parametrize("what, extra, message", REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_backup_settings_are_refused(tmp_path, what, extra, message):
    res = render("backup", tmp_path, *[a for e in extra for a in ("-e", e)])
    assert res.returncode != 0
    assert message in res.stdout, res.stdout[-2000:]
    assert not (tmp_path / "vm1").exists(), "nothing is rendered once a check fails"


def test_an_inventory_with_the_former_setting_names_still_deploys_as_it_asks_and_is_told_to_rename(tmp_path):
    """Until 1.0.0 the backup settings' names of 0.2 (cluster_backup_*) are read, with a deprecation message."""
    import yaml
    inventory = yaml.safe_load((ROOT / "tests" / "render" / "hosts-backup.yml").read_text())
    common = inventory["all"]["vars"]
    common["cluster_backup_s3"] = common.pop("backup_s3")
    common["cluster_backup_stanza"] = "formername"
    common["cluster_backup_process_max"] = 3
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    res = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
                          "tests/render/render_backup.yml", "-e", f"render_dir={tmp_path}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:]
    c = conf(tmp_path / "vm1" / "pgbackrest.conf")
    assert "formername" in c and c["global"]["process-max"] == "3"
    assert c["global"]["repo2-s3-bucket"] == "render-bucket"
    said = " ".join(res.stdout.split())
    assert ("[DEPRECATED] cluster_backup_process_max, cluster_backup_s3, cluster_backup_stanza: renamed "
            "backup_process_max, backup_s3, backup_stanza in 0.2.0") in said


def test_the_database_image_keeps_its_tag_from_0_2_so_an_upgrade_recreates_no_container(rendered):
    """The derived image's tag is a hash of its recipe: the recipe 0.2.0 wrote (hashed here with the base image
    name replaced by X) must come out the same, or every database container would be recreated on upgrade."""
    import hashlib
    import re
    recipe = (rendered / "vm1" / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)$", recipe, re.M).group(1)
    assert hashlib.sha1(recipe.replace(base, "X").encode()).hexdigest()[:12] == "8156e81c58b9"
