#!/usr/bin/env bash
# Builds the Debian packages (dpkg-buildpackage -us -uc -b, from a copy of the
# committed tree), installs them, checks what they put in place, runs a
# 4-server cluster and a put/get with the installed programs, and purges them.
# Prints "deb: ok" or "deb: FAILED: why" last; exit status 0 or 1.
# Usage: scripts/deb.sh [OUT_DIR]   (default: a temporary folder; the .debs stay there)
# Needs root (dpkg -i) and debhelper (scripts/deps.sh --test installs it).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/dfs-deb.XXXXXX")}
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/dfs-deb-work.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "deb: FAILED: $*"; exit 1; }

# The committed tree (what CI checked out), built outside the repository.
src="$work/dfs-0.1.0"
mkdir -p "$src"
git archive HEAD | tar -x -C "$src" || fail "git archive"
(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
  >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; fail "dpkg-buildpackage"; }
cp "$work"/dfs-server_*.deb "$work"/dfs-client_*.deb "$out"/ || fail "no .deb built"
server_deb=$(ls "$out"/dfs-server_*.deb | head -n 1)
client_deb=$(ls "$out"/dfs-client_*.deb | head -n 1)
echo "deb: built $(basename "$server_deb") $(basename "$client_deb")"

dpkg -i "$server_deb" "$client_deb" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "dpkg -i"; }
trap 'cleanup; dpkg --purge dfs-server dfs-client >/dev/null 2>&1' EXIT

for f in /usr/bin/dfs_server /usr/bin/dfc /usr/bin/dfcfs /usr/sbin/mount.fuse.dfcfs \
         /usr/lib/systemd/system/dfs_server@.service /usr/lib/sysusers.d/dfs.conf \
         /usr/share/man/man8/dfs_server.8.gz /usr/share/man/man1/dfc.1.gz \
         /usr/share/man/man8/dfcfs.8.gz; do
  [ -e "$f" ] || fail "$f is missing"
done
[ "$(readlink -f /usr/sbin/mount.fuse.dfcfs)" = /usr/bin/dfcfs ] || fail "mount helper link"
getent passwd dfs >/dev/null || fail "no user dfs"
[ -d /etc/dfs ] || fail "no /etc/dfs"
for p in dfs_server dfc dfcfs; do
  "/usr/bin/$p" --version | grep -q "^$p 0\." || fail "$p --version"
done
if command -v systemd-analyze >/dev/null; then
  cp /usr/lib/systemd/system/dfs_server@.service "$work/dfs_server@DFS1.service"
  warn=$(systemd-analyze verify --man=no "$work/dfs_server@DFS1.service" 2>&1) ||
    fail "systemd-analyze verify: $warn"
  [ -z "$warn" ] || fail "systemd-analyze verify: $warn"
fi

# The installed programs at work: four servers, a put and a get.
printf 'alice S3cret-for-the-deb-test\n' >"$work/dfs.conf"
conf="$work/dfc.conf"
: >"$conf"
for i in 1 2 3 4; do
  /usr/bin/dfs_server "$work/DFS$i" 0 -c "$work/dfs.conf" --bind 127.0.0.1 \
    >"$work/s$i.out" 2>"$work/s$i.err" &
  pids+=($!)
done
for i in 1 2 3 4; do
  for _ in $(seq 100); do grep -q "listening on" "$work/s$i.out" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/s$i.out")
  [ -n "$port" ] || fail "server DFS$i did not start: $(cat "$work/s$i.err")"
  fp=$(sed -n 's/.* key \(SHA256:[^ ]*\).*/\1/p' "$work/s$i.out")
  echo "Server DFS$i 127.0.0.1:$port" >>"$conf"
  echo "Fingerprint DFS$i $fp" >>"$conf"
done
printf 'Username: alice\nPassword: S3cret-for-the-deb-test\n' >>"$conf"
head -c 3000000 /dev/urandom >"$work/blob"
/usr/bin/dfc "$conf" put "$work/blob" >/dev/null || fail "dfc put"
/usr/bin/dfc "$conf" get blob -o "$work/blob.back" >/dev/null || fail "dfc get"
cmp -s "$work/blob" "$work/blob.back" || fail "the file came back different"

dpkg --purge dfs-server dfs-client >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge"; }
[ ! -e /usr/bin/dfs_server ] || fail "dfs_server left after purge"
echo "deb: ok ($out)"
