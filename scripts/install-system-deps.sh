#!/bin/sh
# Installs the system packages that some tests need and npm cannot install:
# - Debian's `chromium` (the browser tests: test/report/report.test.ts, test/models/deploy.test.ts);
# - a Vulkan loader (`libvulkan1`) and Mesa's lavapipe, a CPU Vulkan driver (`mesa-vulkan-drivers`), for the
#   WebGPU backend's tests (test/backends/webgpu*.test.ts). Dawn (the `webgpu` npm package) refuses Mesa
#   older than 23 ("Vulkan shaderUniform*ArrayDynamicIndexing required"), so on Debian bookworm (Mesa 22.3) both
#   come from bookworm-backports, whose apt source is added when missing.
# With --torch, also Debian's `python3-torch` for the PyTorch benchmarks (bench:torch, bench:parity; no test
# needs it), which check for it and point here instead of installing it themselves.
# Idempotent: what is already there is left alone and nothing is downloaded. `.ci/run` calls it before
# `npm test`; `npm test` itself never installs anything (tests whose dependency is missing skip, saying why,
# or fail when CI=true — see test/helpers/system-deps.ts).
#
# Needs apt-get, and root or password-less sudo, only when something is missing. Exit 1 with the reason when it
# cannot install.
set -eu

MESA_MIN=23
# ldconfig lives in /sbin, which is not on every user's PATH.
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)

missing=
vulkan_missing=
torch_missing=
case "${1:-}" in
  '') ;;
  --torch)
    if /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
      echo "python3-torch: $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') (already installed)"
    else
      torch_missing=" python3-torch"
    fi
    ;;
  *) echo "usage: scripts/install-system-deps.sh [--torch]" >&2; exit 2 ;;
esac
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

# The Vulkan loader, found the way the dynamic linker finds it.
if $LDCONFIG -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  echo "libvulkan.so.1: $($LDCONFIG -p | sed -n 's/.*libvulkan\.so\.1 .*=> //p' | head -n 1) (already installed)"
else
  vulkan_missing="$vulkan_missing libvulkan1"
fi
# Lavapipe: its ICD file, from a Mesa new enough for Dawn.
mesa_version=
if command -v dpkg-query >/dev/null 2>&1; then
  mesa_version=$(dpkg-query -W -f='${Status} ${Version}' mesa-vulkan-drivers 2>/dev/null | sed -n 's/^install ok installed //p') || true
fi
if [ -n "$mesa_version" ] && dpkg --compare-versions "$mesa_version" ge "$MESA_MIN"; then
  echo "lavapipe: mesa-vulkan-drivers $mesa_version (already installed)"
elif [ -z "$mesa_version" ] && ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && ! command -v dpkg-query >/dev/null 2>&1; then
  echo "lavapipe: $(ls /usr/share/vulkan/icd.d/lvp_icd*.json | head -n 1) (not a Debian system: version not checked)"
else
  [ -n "$mesa_version" ] && echo "lavapipe: mesa-vulkan-drivers $mesa_version is too old for Dawn (needs Mesa >= $MESA_MIN)"
  vulkan_missing="$vulkan_missing mesa-vulkan-drivers"
fi

[ -z "$missing$vulkan_missing$torch_missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing:$missing$vulkan_missing$torch_missing; apt-get is not available: install them with your system's package manager (or set CHROMIUM_PATH)" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=sudo
else
  echo "missing:$missing$vulkan_missing$torch_missing; installing needs root: run this script as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# On bookworm the Vulkan packages come from bookworm-backports (both of them: the loader with the driver).
vulkan_target=
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || codename=
if [ -n "$vulkan_missing" ] && [ "$codename" = bookworm ]; then
  vulkan_missing=" libvulkan1 mesa-vulkan-drivers"
  vulkan_target="-t bookworm-backports"
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "adding the bookworm-backports apt source (/etc/apt/sources.list.d/bookworm-backports.sources)"
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' 'Components: main' \
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
  fi
fi

if ! $SUDO apt-get update; then
  echo "apt-get update failed (no network or no package source?)" >&2
  exit 1
fi
if [ -n "$missing" ]; then
  echo "installing with apt-get:$missing"
  # shellcheck disable=SC2086 # $missing is a list of package names
  if ! $SUDO apt-get install -y $missing; then
    echo "apt-get could not install$missing" >&2
    exit 1
  fi
  for name in $missing; do
    command -v "$name" >/dev/null 2>&1 || { echo "apt-get finished but $name is not on PATH" >&2; exit 1; }
  done
fi
if [ -n "$vulkan_missing" ]; then
  echo "installing with apt-get${vulkan_target:+ $vulkan_target}:$vulkan_missing"
  # shellcheck disable=SC2086 # lists of words
  if ! $SUDO apt-get install -y --no-install-recommends $vulkan_target $vulkan_missing; then
    echo "apt-get could not install$vulkan_missing" >&2
    exit 1
  fi
  $LDCONFIG -p | grep -q 'libvulkan\.so\.1 ' || { echo "apt-get finished but libvulkan.so.1 is not found" >&2; exit 1; }
  mesa_version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)
  dpkg --compare-versions "$mesa_version" ge "$MESA_MIN" || { echo "apt-get installed mesa-vulkan-drivers $mesa_version, older than Dawn needs (Mesa >= $MESA_MIN)" >&2; exit 1; }
fi
if [ -n "$torch_missing" ]; then
  echo "installing with apt-get:$torch_missing"
  if ! $SUDO apt-get install -y python3-torch; then
    echo "apt-get could not install python3-torch" >&2
    exit 1
  fi
  /usr/bin/python3 -c 'import torch' || { echo "apt-get finished but /usr/bin/python3 cannot import torch" >&2; exit 1; }
fi
echo "installed:$missing$vulkan_missing$torch_missing"
