#!/bin/sh
# PID 1 of a lab VM: run the VM's own Docker engine and keep it running.
# INNER_BIP / INNER_POOL keep the inner networks off the lab network's range.
set -eu
rm -f /var/run/docker.pid
# What an enabled keepalived unit does on a real VM: start at boot once the
# collection configured it (its track file is on /run, so it claims nothing).
# Likewise the host firewall's rules (the collection's boot unit on a real VM).
if [ -f /etc/selfhost-supabase/firewall.nft ]; then
  nft -f /etc/selfhost-supabase/firewall.nft || true
fi
# These VMs have no systemd: where a real VM's enabled keepalived unit keeps
# the daemon running, this loop starts it whenever the collection has
# configured it and it is not running (at boot, after the first deploy, after
# a crash).  The collection is told so (endpoint_service_start: false in the
# lab inventory) and only writes the configuration.
(
  while :; do
    if [ -f /etc/keepalived/keepalived.conf ] && ! pgrep -x keepalived >/dev/null; then
      keepalived --use-file /etc/keepalived/keepalived.conf --log-detail || true
    fi
    sleep 1
  done
) &
# Likewise for auto mode: etcd once /etc/default/etcd names a member, HAProxy
# once its file is the collection's (reloaded when the file changes), and the
# follower once the collection installed it (patroni role), and pgBackRest's
# server on a backup repository host.
(
  haproxy_sum=""
  while :; do
    if grep -qs '^ETCD_NAME=' /etc/default/etcd && ! pgrep -x etcd >/dev/null; then
      (set -a; . /etc/default/etcd; set +a
       exec setpriv --reuid=etcd --regid=etcd --init-groups etcd) >>/var/log/etcd.log 2>&1 &
    fi
    if grep -qs selfhost_primary /etc/haproxy/haproxy.cfg; then
      sum=$(cksum < /etc/haproxy/haproxy.cfg)
      if ! pgrep -x haproxy >/dev/null; then
        haproxy -D -p /run/haproxy.pid -f /etc/haproxy/haproxy.cfg >>/var/log/haproxy.log 2>&1 || true
        haproxy_sum=$sum
      elif [ "$sum" != "$haproxy_sum" ]; then
        [ -z "$haproxy_sum" ] || haproxy -D -p /run/haproxy.pid -f /etc/haproxy/haproxy.cfg \
          -sf $(cat /run/haproxy.pid) >>/var/log/haproxy.log 2>&1 || true
        haproxy_sum=$sum
      fi
    fi
    # The backup repository host's pgBackRest TLS server (backup role).
    if grep -qs '^tls-server-address' /etc/pgbackrest/pgbackrest.conf && ! pgrep -f '^pgbackrest server' >/dev/null; then
      setpriv --reuid=pgbackrest --regid=pgbackrest --init-groups pgbackrest server \
        >>/var/log/pgbackrest-server.log 2>&1 &
    fi
    if [ -x /usr/local/sbin/selfhost-supabase-follow ] && ! pgrep -f selfhost-supabase-follow >/dev/null; then
      /usr/local/sbin/selfhost-supabase-follow >>/var/log/selfhost-supabase-follow.log 2>&1 &
    fi
    sleep 1
  done
) &
# Docker 26 (Debian 13) turns IPv6 off on each container's interface and fails the
# start when it cannot, which is so inside a VM container whose IPv6 is off: the
# lab's networks are IPv4 only, so that step is skipped.
export DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1
while :; do
  dockerd --bip "${INNER_BIP:-172.31.250.1/24}" \
          --default-address-pool "${INNER_POOL:-base=172.29.0.0/16,size=24}" \
          >>/var/log/dockerd.log 2>&1 || true
  echo "dockerd exited; restarting in 1s" >>/var/log/dockerd.log
  sleep 1
done
