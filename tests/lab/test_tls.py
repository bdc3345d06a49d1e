"""TLS between the database hosts (1 master + 1 replica, inventories/lab): the
collection's CA, replication over TLS only, the standby verifying the primary's
certificate, and certificates reissued when they near expiry."""

import json
import os
import socket
import ssl
import subprocess

import pytest
import yaml
from cryptography import x509

from conftest import (ADDRESSES, ENDPOINT, PREFIX, PROJECT, SECRETS, ansible_playbook, psql, secret, vm_host,
                      wait_until)

pytestmark = [pytest.mark.default, pytest.mark.usefixtures("lab_up")]

TLS_DIR = SECRETS / "tls"
VM_TLS = f"{PROJECT}/volumes/db/tls"


def replication_from_vm2(sslmode):
    """IDENTIFY_SYSTEM on vm1 over a replication connection opened from vm2's address."""
    script = ("import os, psycopg2, psycopg2.extras; "
              f"c = psycopg2.connect(host='{ADDRESSES['vm1']}', port=5433, user='supabase_replication_admin', "
              f"password=os.environ['PGPASSWORD'], sslmode='{sslmode}', sslrootcert='{VM_TLS}/ca.crt', "
              "connect_timeout=5, connection_factory=psycopg2.extras.PhysicalReplicationConnection); "
              "cur = c.cursor(); cur.execute('IDENTIFY_SYSTEM'); print(cur.fetchone()[0])")
    env = dict(os.environ, PGPASSWORD=secret("replication_password"))
    return subprocess.run(["docker", "exec", "-e", "PGPASSWORD", f"{PREFIX}-vm2", "python3", "-c", script],
                          env=env, capture_output=True, text=True, timeout=30)


def certificate(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_standby_streams_over_tls_and_verifies_the_primarys_certificate():
    row = psql("vm1", "SELECT s.ssl, s.version FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) "
                      "WHERE r.application_name = 'vm2'")
    assert row.startswith("t|TLSv1."), row
    conninfo = psql("vm2", "SELECT conninfo FROM pg_stat_wal_receiver")
    assert "sslmode=verify-full" in conninfo and f"sslrootcert={VM_TLS}/ca.crt" in conninfo


def test_plain_text_replication_is_refused_and_tls_from_the_same_address_accepted():
    plain = replication_from_vm2("disable")
    assert plain.returncode != 0
    assert "no pg_hba.conf entry for replication connection" in plain.stderr and "no encryption" in plain.stderr
    verified = replication_from_vm2("verify-full")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip() == psql("vm1", "SELECT system_identifier FROM pg_control_system()")


def test_each_host_has_a_certificate_for_its_names_signed_by_the_collections_ca():
    ca = certificate(TLS_DIR / "ca.crt")
    for vm in ("vm1", "vm2"):
        cert = certificate(TLS_DIR / f"{vm}.crt")
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert str(names.get_values_for_type(x509.IPAddress)[0]) == ADDRESSES[vm]
        assert vm in names.get_values_for_type(x509.DNSName)
        host = vm_host(vm)
        key = host.file(f"{VM_TLS}/server.key")
        assert key.mode == 0o600 and key.uid != 0
        assert host.file(f"{VM_TLS}/server.crt").content == (TLS_DIR / f"{vm}.crt").read_bytes()
    assert (TLS_DIR / "ca.key").stat().st_mode & 0o777 == 0o600


def test_a_certificate_near_expiry_is_reissued_and_otherwise_left_alone():
    before = certificate(TLS_DIR / "vm1.crt").serial_number
    loaded = psql("vm1", "SELECT pg_conf_load_time()")
    # Every certificate (365 days) expires within 400 days: this run reissues them.
    res = ansible_playbook("site.yml", "-i", "inventories/lab", "--tags", "master", "-e", "cluster_tls_renew_days=400",
                           timeout=600)
    assert res.returncode == 0, res.stdout[-3000:]
    after = certificate(TLS_DIR / "vm1.crt").serial_number
    assert after != before
    assert vm_host("vm1").file(f"{VM_TLS}/server.crt").content == (TLS_DIR / "vm1.crt").read_bytes()
    assert psql("vm1", "SELECT pg_conf_load_time()") != loaded, "the database did not reload the new certificate"
    # Left alone otherwise: every later run that must change nothing (test_backup.py's second
    # run first) would count a reissue; the role's own test covers each reason to reissue.
    # The standby reconnects with the new certificate verified.
    assert replication_from_vm2("verify-full").returncode == 0


API_TLS = f"{PROJECT}/volumes/api/tls"


def test_the_gateway_is_given_a_certificate_of_the_ca_for_the_api_addresses_on_every_host():
    """The gateway (Envoy) does not start in the lab: its rendered service and files are
    checked, and the certificate and key are served by openssl on the VM to a client that
    verifies them."""
    ca_file = TLS_DIR / "ca.crt"
    for vm in ("vm1", "vm2"):
        host = vm_host(vm)
        cert = certificate(TLS_DIR / f"{vm}-api.crt")
        cert.verify_directly_issued_by(certificate(ca_file))
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert {str(a) for a in names.get_values_for_type(x509.IPAddress)} == {ADDRESSES[vm], ENDPOINT}
        assert host.file(f"{API_TLS}/server.crt").content == (TLS_DIR / f"{vm}-api.crt").read_bytes()
        assert host.file(f"{API_TLS}/server.key").mode == 0o600
        assert host.file(f"{PROJECT}/volumes/api/envoy/lds.yaml").mode == 0o600
        config = json.loads(host.check_output(
            f"cd {PROJECT} && docker compose -f docker-compose-master.yml config --format json"))
        gateway = config["services"]["api-gw"]
        assert {"source": API_TLS, "target": "/etc/envoy/tls", "read_only": True} in [
            {k: v[k] for k in ("source", "target", "read_only")} for v in gateway["volumes"] if "read_only" in v]
        assert {"published": "8443", "target": 8443} in [
            {"published": p.get("published"), "target": p["target"]} for p in gateway["ports"]]
        lds = yaml.safe_load(host.file(f"{PROJECT}/volumes/api/envoy/lds.yaml").content_string)
        (https,) = [r for r in lds["resources"] if r["name"] == "https"]
        assert https["address"]["socket_address"]["port_value"] == 8443
        tls = https["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"]
        assert tls["tls_certificates"] == [{"certificate_chain": {"filename": "/etc/envoy/tls/server.crt"},
                                            "private_key": {"filename": "/etc/envoy/tls/server.key"}}]

        # A TLS client that trusts only the CA accepts the pair for the VM's address.
        server = subprocess.Popen(["docker", "exec", f"selfhost-lab-{vm}", "timeout", "20", "openssl", "s_server",
                                   "-quiet", "-accept", "18443", "-cert", f"{API_TLS}/server.crt",
                                   "-key", f"{API_TLS}/server.key"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            context = ssl.create_default_context(cafile=str(ca_file))

            def handshake():
                try:
                    with socket.create_connection((ADDRESSES[vm], 18443), timeout=2) as raw:
                        with context.wrap_socket(raw, server_hostname=ADDRESSES[vm]) as tls:
                            return tls.getpeercert()["subject"]
                except ConnectionRefusedError:
                    return None
            subject, _ = wait_until(handshake, timeout=15)
            assert ((("commonName", f"{vm}-api"),),) == subject
        finally:
            server.kill()
            subprocess.run(["docker", "exec", f"selfhost-lab-{vm}", "pkill", "-f", "s_server"],
                           capture_output=True, timeout=30)
