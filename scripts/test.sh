#!/usr/bin/env bash
# Set up everything the tests need and run them: the venv (scripts/setup.sh), the Debian packages for the
# loopback OpenSSH server and two-node SLURM cluster (scripts/loopback-cluster.sh install; the test
# fixtures start the daemons), then pytest, then whether the two-node SLURM tests could run. Extra arguments
# go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -x scripts/loopback-cluster.sh ] || [ -f scripts/loopback-cluster.sh ]; then
  bash scripts/loopback-cluster.sh install > /tmp/molremote-infra-install.log 2>&1 \
    || { echo "loopback infra install failed (see /tmp/molremote-infra-install.log)"; tail -20 /tmp/molremote-infra-install.log; exit 1; }
fi
export MOLREMOTE_TEST=1
set +e
.venv/bin/python -m pytest -p no:cacheprovider -ra --durations=15 "$@"
rc=$?
set -e
# a skip is not a pass: say whether the two-node SLURM tests (tests/backends/test_slurm_multinode.py) could run
if [ -f scripts/loopback-cluster.sh ]; then
  nodes=$(bash scripts/loopback-cluster.sh nodes 2>/dev/null || true)
  case "$nodes" in
    "2 nodes"*) echo "loopback SLURM: $nodes" ;;
    *) echo "loopback SLURM: $nodes -- the two-node SLURM tests did not run (skipped)" ;;
  esac
fi
[ "$rc" -eq 5 ] && { echo "pytest collected no tests"; exit 1; }
exit "$rc"
