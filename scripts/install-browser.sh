#!/usr/bin/env bash
# Install headless Chromium and its WebDriver from Debian (packages `chromium`, `chromium-driver`) for the
# HTML report's browser test (tests/report/test_browser.py drives it with Selenium). Idempotent: when both
# binaries are present it returns at once. Needs root (apt-get), like scripts/loopback-cluster.sh install.
# Prints the two paths on success.
set -euo pipefail
CHROMIUM=${MOLREMOTE_CHROMIUM:-/usr/bin/chromium}
DRIVER=${MOLREMOTE_CHROMEDRIVER:-/usr/bin/chromedriver}
if [ ! -x "$CHROMIUM" ] || [ ! -x "$DRIVER" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: $CHROMIUM or $DRIVER missing and not root: run as root (apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium chromium-driver
fi
"$CHROMIUM" --version >/dev/null 2>&1 || { echo "install-browser: $CHROMIUM does not run" >&2; exit 1; }
echo "CHROMIUM=$CHROMIUM CHROMEDRIVER=$DRIVER"
