#!/bin/sh
# Installs the system packages that some tests need and npm cannot install: Debian's `chromium` (the browser
# tests: test/report/report.test.ts, test/models/deploy.test.ts). Idempotent: what is already there is left alone and nothing is downloaded. `.ci/run` calls it
# before `npm test`; `npm test` itself never installs anything (tests whose dependency is missing skip, saying
# why, or fail when CI=true — see test/helpers/system-deps.ts).
#
# Needs apt-get, and root or password-less sudo, only when something is missing. Exit 1 with the reason when it
# cannot install.
set -eu

missing=
if [ -n "${CHROMIUM_PATH:-}" ]; then
  if [ -x "$CHROMIUM_PATH" ]; then
    echo "chromium: $CHROMIUM_PATH (CHROMIUM_PATH)"
  else
    echo "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file: fix or unset it" >&2
    exit 1
  fi
elif path=$(command -v chromium || command -v chromium-browser); then
  echo "chromium: $path (already installed)"
else
  missing="$missing chromium"
fi

[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing:$missing; apt-get is not available: install them with your system's package manager (or set CHROMIUM_PATH)" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=sudo
else
  echo "missing:$missing; installing needs root: run 'sudo apt-get install -y$missing'" >&2
  exit 1
fi

echo "installing with apt-get:$missing"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # $missing is a list of package names
if ! $SUDO apt-get update || ! $SUDO apt-get install -y $missing; then
  echo "apt-get could not install$missing (no network or no package source?)" >&2
  exit 1
fi
for name in $missing; do
  command -v "$name" >/dev/null 2>&1 || { echo "apt-get finished but $name is not on PATH" >&2; exit 1; }
done
echo "installed:$missing"
