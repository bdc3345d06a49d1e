#!/usr/bin/env bash
# ansible-test sanity on the collection as it ships: build the tarball,
# install it under .lab/sanity/ansible_collections/selfhost/supabase and run
# every sanity test there (lab/, bench/, molecule/ are not shipped, so they are
# not checked as collection content).  Exit status: ansible-test's.
set -euo pipefail
cd "$(dirname "$0")/.."
# An absolute VENV or one relative to the checkout.
VENV=$(realpath -m "${VENV:-.venv}")
ROOT=$PWD
WORK=$ROOT/.lab/sanity
rm -rf "$WORK/collections" "$WORK/build"
mkdir -p "$WORK/build" "$WORK/home/.ansible/test/cache"

# ansible-test bootstraps pip in its virtualenvs with a get-pip script it
# downloads from a host this machine cannot reach; this one does the same job
# with the interpreter's ensurepip and PyPI.
cat > "$WORK/home/.ansible/test/cache/get_pip_24_2.py" <<'PY'
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
sys.exit(subprocess.run([sys.executable, "-m", "pip", "install", *args]).returncode)
PY

"$VENV/bin/ansible-galaxy" collection build --force --output-path "$WORK/build" . >/dev/null
tarball=$(ls "$WORK"/build/selfhost-supabase-*.tar.gz)
"$VENV/bin/ansible-galaxy" collection install --no-deps --force -p "$WORK/collections" "$tarball" >/dev/null
cd "$WORK/collections/ansible_collections/selfhost/supabase"
# ansible-test lists a collection's files with git when it sits inside a
# repository (this one would be ignored by the checkout's .gitignore).
git init -q . && git add -A .
# The compile and import tests run for every Python the controller supports
# that is on PATH (pyenv provides them on this machine kind).
pyenv_bins=""
if command -v pyenv >/dev/null; then
  for v in $(pyenv versions --bare 2>/dev/null); do
    pyenv_bins="$pyenv_bins:$(pyenv root)/versions/$v/bin"
  done
fi
set +e
HOME=$WORK/home PATH="$VENV/bin:$PATH$pyenv_bins" \
  "$VENV/bin/ansible-test" sanity --local --color no "$@" 2>&1 | tee "$WORK/sanity.log"
rc=${PIPESTATUS[0]}
set -e
# One JUnit test case per sanity test, failed when ansible-test lists it as failed.
"$VENV/bin/python" - "$WORK/sanity.log" "$ROOT/.lab/junit-sanity.xml" <<'PY'
import re
import sys
import xml.etree.ElementTree as ET

text = open(sys.argv[1]).read()
tests = [name + (f" --python {version}" if version else "")
         for name, version in re.findall(r'^Running sanity test "([^"]+)"(?: on Python (\S+))?', text, re.M)]
failed = set()
fatal = re.search(r"^FATAL: The \d+ sanity test\(s\) listed below.*\n((?:.+\n?)+)", text, re.M)
if fatal:
    failed = set(line.strip() for line in fatal.group(1).splitlines())
suite = ET.Element("testsuite", name="ansible-test sanity", tests=str(len(tests)), failures=str(len(failed)),
                   errors="0", skipped="0")
for name in tests:
    case = ET.SubElement(suite, "testcase", classname="sanity", name=name)
    if name in failed:
        ET.SubElement(case, "failure", message=f"ansible-test sanity --test {name} failed (see the log)")
ET.ElementTree(suite).write(sys.argv[2])
PY
exit "$rc"
