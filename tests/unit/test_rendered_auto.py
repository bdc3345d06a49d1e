"""Auto mode's files as the roles render them (3 database hosts and a witness,
no VM): Patroni's configuration, HAProxy's ports, etcd's members, the
follower; and bad auto settings refused by the cluster role's checks."""

import re
import shutil
import subprocess

import pytest
import yaml

from render import render, rendered_once

DB = {"vm1": "10.20.0.11", "vm2": "10.20.0.12", "vm3": "10.20.0.13"}
WITNESS = {"vm4": "10.20.0.14"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return rendered_once("auto", tmp_path_factory)


def test_patroni_is_configured_for_this_host_the_store_and_verify_full(rendered):
    for host, address in DB.items():
        conf = yaml.safe_load((rendered / host / "patroni.yml").read_text())
        assert conf["name"] == host
        assert conf["restapi"]["connect_address"] == f"{address}:8008"
        assert conf["postgresql"]["connect_address"] == f"{address}:5433"
        assert conf["etcd3"]["hosts"] == [f"{a}:2379" for a in {**DB, **WITNESS}.values()]
        dcs = conf["bootstrap"]["dcs"]
        assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (20, 8, 6)
        assert dcs["postgresql"]["use_pg_rewind"] is True
        assert dcs["synchronous_mode"] is False and "synchronous_mode_strict" not in dcs
        # Without backups, a replica Patroni builds is copied from the primary.
        assert conf["postgresql"]["create_replica_methods"] == ["basebackup"]
        # A cut-off primary's demotion waits this long for a standby that cannot answer.
        assert dcs["postgresql"]["parameters"]["wal_sender_timeout"] == "10s"
        assert {"type": "logical"} in dcs["ignore_slots"], "realtime's and Logflare's slots are not Patroni's"
        for kind in ("replication", "rewind"):
            assert conf["postgresql"]["authentication"][kind]["sslmode"] == "verify-full"
        replication = conf["postgresql"]["authentication"]["replication"]
        assert replication["password"] == "render-test-replication-pw-0123456789"
        assert conf["postgresql"]["custom_conf"] == "/etc/postgresql-selfhost/postgresql.conf"


def test_the_read_port_spreads_over_every_replica_and_falls_back_to_the_primary(rendered):
    cfg = (rendered / "vm2" / "haproxy.cfg").read_text()
    backends = dict(re.findall(r"^backend (\S+)\n((?:    .*\n?)*)", cfg, re.M))
    primary, replicas = backends["selfhost_primary"], backends["selfhost_replicas"]
    assert "GET /primary" in primary and "GET /replica" in replicas
    assert "balance roundrobin" in replicas
    for backend in (primary, replicas):
        servers = re.findall(r"server (\S+) (\S+) check port 8008", backend)
        assert servers == [(h, f"{a}:5433") for h, a in DB.items()]
    assert re.search(r"frontend selfhost_replicas\n    bind :5435\n    use_backend selfhost_replicas if "
                     r"\{ nbsrv\(selfhost_replicas\) gt 0 \}\n    default_backend selfhost_primary", cfg)
    assert re.search(r"frontend selfhost_primary\n    bind :5434\n", cfg)
    assert "on-marked-down shutdown-sessions" in cfg
    if shutil.which("haproxy"):
        res = subprocess.run(["haproxy", "-c", "-f", str(rendered / "vm2" / "haproxy.cfg")], capture_output=True,
                             text=True)
        assert res.returncode == 0, res.stdout + res.stderr


def test_every_consensus_member_knows_all_four(rendered):
    for host, address in {**DB, **WITNESS}.items():
        env = dict(line.split("=", 1) for line in (rendered / host / "etcd.env").read_text().splitlines()
                   if line and not line.startswith("#"))
        assert env["ETCD_NAME"] == host
        assert env["ETCD_LISTEN_PEER_URLS"] == f"http://{address}:2380"
        members = dict(m.split("=", 1) for m in env["ETCD_INITIAL_CLUSTER"].split(","))
        assert members == {h: f"http://{a}:2380" for h, a in {**DB, **WITNESS}.items()}
    assert not (rendered / "vm4" / "patroni.yml").exists(), "a witness runs etcd only"


def test_the_follower_and_the_start_script_are_valid_shell(rendered):
    for name in ("follow.sh", "patroni-start.sh"):
        res = subprocess.run(["sh", "-n", str(rendered / "vm1" / name)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    follow = (rendered / "vm1" / "follow.sh").read_text()
    assert "http://10.20.0.11:8008" in follow and "up -d --no-deps $services" in follow
    assert "docker-compose-patroni.yml" in follow
    start = (rendered / "vm1" / "patroni-start.sh").read_text()
    assert "unset PGPASSWORD" in start and "exec patroni /etc/postgresql-selfhost/patroni.yml" in start


BAD = [
    ("ttl below the minimum", ["-e", "cluster_patroni_ttl=19"], "Patroni's documented minimum is 20"),
    ("loop_wait + 2 retry_timeout above the ttl", ["-e", "cluster_patroni_ttl=20", "-e", "cluster_patroni_loop_wait=8",
                                                   "-e", "cluster_patroni_retry_timeout=7"],
     "= 22 is more than cluster_patroni_ttl (20)"),
    ("retry_timeout below 3", ["-e", "cluster_patroni_retry_timeout=2"], "cluster_patroni_retry_timeout at least 3"),
    ("no wait for an unresponsive standby", ["-e", "cluster_patroni_wal_sender_timeout=0"],
     "cluster_patroni_wal_sender_timeout is 0: give at least 1 second"),
    ("an unknown mode", ["-e", "cluster_mode=automatic"], "value of cluster_mode must be one of: auto, manual"),
    ("synchronous mode in manual mode", ["-e", "cluster_mode=manual", "-e", '{"cluster_synchronous_mode": true}'],
     "cluster_synchronous_mode needs cluster_mode auto"),
    ("auto with two members", ["-e", "cluster_mode=auto", "-e", '{"cluster_consensus_hosts": ["vm1", "vm2"]}'],
     "etcd needs three to survive the loss of one"),
]


@pytest.mark.parametrize("what, extra, message", BAD, ids=[b[0] for b in BAD])
def test_bad_auto_settings_are_refused(tmp_path, what, extra, message):
    res = render("auto", tmp_path, *extra)
    assert res.returncode != 0, f"{what} was accepted"
    assert message in res.stdout, res.stdout[-3000:]
    assert not list(tmp_path.glob("*/patroni.yml")), "a file was rendered before the refusal"
