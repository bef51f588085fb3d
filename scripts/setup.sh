#!/usr/bin/env bash
# Installs what Brig needs on a Debian or Ubuntu host, idempotently:
# the C compiler for the launcher, libseccomp, redis-server, the npm packages,
# then builds the launcher. Exit codes: 0 ready, 1 a step failed, 3 not
# possible here (not root, no apt-get and something is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v cc >/dev/null 2>&1 || need_pkgs+=(gcc libc6-dev)
[ -e /usr/include/linux/seccomp.h ] || need_pkgs+=(linux-libc-dev)
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || need_pkgs+=(libseccomp2)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "brig setup: missing ${need_pkgs[*]}; run this script as root to install them" >&2
    exit 3
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "brig setup: missing ${need_pkgs[*]} and no apt-get here: install them with your package manager" >&2
    exit 3
  fi
  echo "brig setup: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  # The Debian package starts a system redis on 6379; Brig starts its own.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run -s build
