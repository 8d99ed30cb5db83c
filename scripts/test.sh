#!/usr/bin/env bash
# Set up everything the tests need and run them: the venv (scripts/setup.sh), the Debian packages for the
# loopback OpenSSH server and single-node SLURM cluster (scripts/loopback-cluster.sh install; the test
# fixtures start and stop the daemons), headless Chromium for the report's browser test
# (scripts/install-browser.sh), then pytest. Extra arguments go to pytest.
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
set +e
.venv/bin/python -m pytest -p no:cacheprovider -ra --durations=15 "$@"
rc=$?
set -e
[ "$rc" -eq 5 ] && { echo "pytest collected no tests"; exit 1; }
exit "$rc"
