#!/usr/bin/env bash
# Set up everything the tests need and run them: the venv (scripts/setup.sh), the Debian packages for the
# loopback OpenSSH server and two-node SLURM cluster (scripts/loopback-cluster.sh install; the test
# fixtures start the daemons), headless Chromium for the report's browser test (scripts/install-browser.sh),
# whether the two-node SLURM tests can run, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -x scripts/loopback-cluster.sh ] || [ -f scripts/loopback-cluster.sh ]; then
  bash scripts/loopback-cluster.sh install > /tmp/molremote-infra-install.log 2>&1 \
    || { echo "loopback infra install failed (see /tmp/molremote-infra-install.log)"; tail -20 /tmp/molremote-infra-install.log; exit 1; }
fi
bash scripts/install-browser.sh > /tmp/molremote-browser-install.log 2>&1 \
  || { echo "browser install failed (see /tmp/molremote-browser-install.log)"; tail -20 /tmp/molremote-browser-install.log; exit 1; }
export MOLREMOTE_TEST=1
# a skip is not a pass: say up front whether the two-node SLURM tests (tests/backends/test_slurm_multinode.py)
# can run (printed before pytest so that pytest's own summary stays the last line)
if [ -f scripts/loopback-cluster.sh ]; then
  bash scripts/loopback-cluster.sh start > /tmp/molremote-infra-start.log 2>&1 || true
  nodes=$(bash scripts/loopback-cluster.sh nodes 2>/dev/null || true)
  case "$nodes" in
    "2 nodes"*) echo "loopback SLURM: $nodes" ;;
    *) echo "loopback SLURM: ${nodes:-not running} -- the two-node SLURM tests will be skipped" ;;
  esac
fi
set +e
.venv/bin/python -m pytest -p no:cacheprovider -ra --durations=15 "$@"
rc=$?
set -e
[ "$rc" -eq 5 ] && { echo "pytest collected no tests"; exit 1; }
exit "$rc"
