# -*- coding: utf-8 -*-
# Copyright: selfhost.supabase contributors
# MIT License (see LICENSE)
"""Run a command in a one-off container of an image (Docker SDK).

Used to run the database image's own PostgreSQL tools on a VM that has no
PostgreSQL packages.  Output goes to a log file as it arrives, so a long run
can be watched with tail -f; the container is always removed.
"""

from __future__ import annotations

import threading
import traceback

try:
    import docker
    DOCKER_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the target host
    docker = None
    DOCKER_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib


def client(module):
    if docker is None:
        module.fail_json(msg=missing_required_lib("docker (Debian: python3-docker)"),
                         exception=DOCKER_IMPORT_ERROR)
    try:
        return docker.from_env()
    except docker.errors.DockerException as exc:
        module.fail_json(msg=f"cannot reach the Docker engine on this host: {exc}. "
                             "Is dockerd running and is this task run as root (become: true)?")


def image_user_ids(module, cli, image, user):
    """uid and gid of `user` inside `image` (they differ between images)."""
    try:
        out = cli.containers.run(image, entrypoint=["sh", "-c", 'id -u "$0"; id -g "$0"', user],
                                 remove=True, network_mode="none")
    except docker.errors.ImageNotFound:
        module.fail_json(msg=f"image {image} is not on this host: pull or load it first")
    except docker.errors.ContainerError as exc:
        module.fail_json(msg=f"user {user!r} does not exist in image {image}: {exc}")
    uid, gid = out.decode().split()
    return int(uid), int(gid)


def run(module, cli, image, command, log_path, timeout, **kwargs):
    """Run command to completion; returns the exit code (None on timeout)."""
    container = cli.containers.run(image, command=command, entrypoint=[], detach=True, **kwargs)
    try:
        with open(log_path, "ab") as log:
            def pump():
                for chunk in container.logs(stream=True, follow=True):
                    log.write(chunk)
                    log.flush()
            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            try:
                result = container.wait(timeout=timeout)
            except Exception:  # requests' ReadTimeout: the run took too long
                container.kill()
                return None
            reader.join(timeout=10)
        return result.get("StatusCode")
    finally:
        try:
            container.remove(force=True)
        except docker.errors.APIError:
            pass


def tls_volume(params):
    """The CA certificate mounted read-only at its own path, so the tool finds it where the
    standby's primary_conninfo names it."""
    cert = params.get("ca_cert")
    return {cert: {"bind": cert, "mode": "ro"}} if cert else {}
