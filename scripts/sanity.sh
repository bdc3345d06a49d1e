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
# (Each ansible-test names the pip it wants in the file name: 2.19's 24.2, 2.20's and 2.21's 25.2.)
cat > "$WORK/home/.ansible/test/cache/get_pip_24_2.py" <<'PY'
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
sys.exit(subprocess.run([sys.executable, "-m", "pip", "install", *args]).returncode)
PY
cp "$WORK/home/.ansible/test/cache/get_pip_24_2.py" "$WORK/home/.ansible/test/cache/get_pip_25_2.py"

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
# Every core meta/runtime.yml admits has its own run (tests/sanity/cores:
# the newest release of each).  The venv's core runs in the venv; the others
# in a venv of their own under .lab/sanity/ (made once), on the newest Python
# of pyenv's that the core's controller takes.
status=0
: > "$WORK/sanity.log"
while read -r core python <&3; do
  case "$core" in ''|'#'*) continue ;; esac
  have=$("$VENV/bin/python" -c 'import ansible; print(ansible.__version__)')
  if [ "$have" = "$core" ]; then
    bin=$VENV/bin
  else
    bin=$WORK/venv-$core/bin
    if [ ! -x "$bin/ansible-test" ]; then
      # pyenv's interpreter itself (its shims answer only for the active versions), else one on PATH.
      interp="$(pyenv root 2>/dev/null)/versions/$(pyenv versions --bare 2>/dev/null | grep "^$python\." | tail -1)/bin/python"
      [ -x "$interp" ] || interp=$(command -v "python$python" || true)
      [ -x "$interp" ] || { echo "sanity: no python$python for ansible-core $core" >&2; status=1; continue; }
      "$interp" -m venv "$WORK/venv-$core" && "$bin/pip" install -q "ansible-core==$core" >/dev/null \
        || { echo "sanity: installing ansible-core $core failed" >&2; status=1; continue; }
    fi
  fi
  # The first core checks every Python on PATH (compile and import per Python);
  # the others what changes with the core, on their own controller Python.
  if [ -z "${first_done:-}" ]; then only=(); first_done=1; else only=(--python "$python"); fi
  echo "=== ansible-test sanity, ansible-core $core ===" | tee -a "$WORK/sanity.log"
  set +e
  HOME=$WORK/home PATH="$bin:$PATH$pyenv_bins" \
    "$bin/ansible-test" sanity --local --color no "${only[@]}" "$@" 2>&1 | sed "s/^Running sanity test \"/&[$core] /" | tee -a "$WORK/sanity.log"
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 0 ] || status=$rc
done 3< "$ROOT/tests/sanity/cores"
# One JUnit test case per sanity test, failed when ansible-test lists it as failed.
"$VENV/bin/python" - "$WORK/sanity.log" "$ROOT/.lab/junit-sanity.xml" <<'PY'
import re
import sys
import xml.etree.ElementTree as ET

text = open(sys.argv[1]).read()
tests, failed = [], set()
# Each core's part of the log: its tests, and the ones its FATAL line lists.
for core, part in re.findall(r"^=== ansible-test sanity, ansible-core (\S+) ===\n(.*?)(?=^=== |\Z)", text, re.M | re.S):
    tests += [f"[{core}] {name}" + (f" --python {version}" if version else "")
              for name, version in re.findall(r'^Running sanity test "\[\S+\] ([^"]+)"(?: on Python (\S+))?', part, re.M)]
    fatal = re.search(r"^FATAL: The \d+ sanity test\(s\) listed below.*\n((?:.+\n?)+)", part, re.M)
    if fatal:
        failed |= {f"[{core}] {line.strip()}" for line in fatal.group(1).splitlines() if line.strip()}
suite = ET.Element("testsuite", name="ansible-test sanity", tests=str(len(tests)), failures=str(len(failed)),
                   errors="0", skipped="0")
for name in tests:
    case = ET.SubElement(suite, "testcase", classname="sanity", name=name)
    if name in failed:
        ET.SubElement(case, "failure", message=f"ansible-test sanity --test {name} failed (see the log)")
ET.ElementTree(suite).write(sys.argv[2])
PY
exit "$status"
