#!/bin/sh
# Makes sure a headless Chromium is available for the report's browser test (test/report/report.test.ts).
# Uses $CHROMIUM_PATH or a chromium already on PATH; otherwise installs Debian's `chromium` package with apt-get
# (as root, or through sudo when it needs no password). Prints the browser's path on success, exits 1 with the
# reason otherwise. The test skips (saying why) when this fails; nothing else in softseg needs a browser.
set -eu

found() {
  printf '%s\n' "$1"
  exit 0
}

if [ -n "${CHROMIUM_PATH:-}" ]; then
  [ -x "$CHROMIUM_PATH" ] && found "$CHROMIUM_PATH"
  echo "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file" >&2
  exit 1
fi
for name in chromium chromium-browser; do
  path=$(command -v "$name" 2>/dev/null || true)
  [ -n "$path" ] && found "$path"
done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is not installed and apt-get is not available: install Chromium yourself, or set CHROMIUM_PATH" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=sudo
else
  echo "chromium is not installed and installing it needs root: run 'sudo apt-get install -y chromium', or set CHROMIUM_PATH" >&2
  exit 1
fi

echo "installing chromium with apt-get (once)..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update >&2 || ! $SUDO apt-get install -y chromium >&2; then
  echo "apt-get could not install chromium (no network or no package source?): install it yourself, or set CHROMIUM_PATH" >&2
  exit 1
fi
path=$(command -v chromium 2>/dev/null || true)
[ -n "$path" ] && found "$path"
echo "apt-get finished but no chromium is on PATH" >&2
exit 1
