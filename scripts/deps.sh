#!/usr/bin/env bash
# Installs the Debian packages dfs needs to build and run, when missing;
# with --test also those the sanitizer and fuzz builds of scripts/test.sh need
# (clang, its sanitizer and libFuzzer runtimes, llvm-symbolizer).
# Usage: scripts/deps.sh [--test]
set -euo pipefail
packages=(g++ meson ninja-build pkg-config libssl-dev libspdlog-dev libcli11-dev doctest-dev
          libfuse3-dev fuse3 python3 libsystemd-dev)
# (systemd: systemd-analyze verifies the units; man-db renders the man pages.)
# (debhelper, dpkg-dev: the Debian packages are built and installed.)
[ "${1:-}" = "--test" ] && packages+=(clang libclang-rt-14-dev llvm-14 rsync attr systemd man-db
                                      debhelper dpkg-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
