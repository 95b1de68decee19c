#!/usr/bin/env bash
# Builds dfs and starts a local cluster: 4 dfs_server processes (DFS1..DFS4 on
# 127.0.0.1:10001..10004, data in ./cluster/DFS1..4) and a dfcfs mount at
# ./cluster/mnt for user Alice (conf/dfc.conf).
# As a real deployment should: each server gets its own dfs.conf holding only
# its own verifiers ($dfs2$ lines from --hash-password, never the passwords),
# and cluster/dfc.conf pins each server's TLS key (Fingerprint lines).
#   scripts/cluster.sh          start (or restart) everything
#   scripts/cluster.sh stop     unmount and stop the servers
#   scripts/cluster.sh status   show what is running
# Override with env: DFS_HOME (default ./cluster), DFS_MOUNT (default $DFS_HOME/mnt).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
home=${DFS_HOME:-$repo/cluster}
mnt=${DFS_MOUNT:-$home/mnt}
build=$repo/build

stop() {
  if mountpoint -q "$mnt" 2>/dev/null; then
    fusermount3 -u "$mnt" || fusermount3 -uz "$mnt" || true
  fi
  for i in 1 2 3 4; do
    pidfile=$home/DFS$i.pid
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
}

case "${1:-start}" in
  stop) stop; echo "cluster stopped"; exit 0 ;;
  status)
    for i in 1 2 3 4; do
      pidfile=$home/DFS$i.pid
      if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "DFS$i running (pid $(cat "$pidfile"), port 1000$i)"
      else
        echo "DFS$i stopped"
      fi
    done
    mountpoint -q "$mnt" && echo "mounted at $mnt" || echo "not mounted"
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

bash scripts/deps.sh
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
meson compile -C "$build" >/dev/null

stop
mkdir -p "$home" "$mnt"
server=$build/dfs_server/dfs_server
for i in 1 2 3 4; do
  conf=$home/DFS$i.conf
  if [ ! -s "$conf" ] || [ conf/dfs.conf -nt "$conf" ]; then
    # One $dfs2$ line per user, valid on DFS$i only.
    umask 077
    : >"$conf.tmp"
    while read -r user secret rest; do
      case "$user" in ''|'#'*) continue ;; esac
      line=$(printf '%s\n' "$secret" | "$server" --hash-password "$user" --name "DFS$i")
      echo "$line${rest:+ $rest}" >>"$conf.tmp"
    done <conf/dfs.conf
    mv "$conf.tmp" "$conf"
    umask 022
  fi
  "$server" "$home/DFS$i" "1000$i" -c "$conf" --bind 127.0.0.1 >"$home/DFS$i.log" 2>&1 &
  echo $! >"$home/DFS$i.pid"
done
# Wait until every server listens.
for i in 1 2 3 4; do
  for _ in $(seq 1 100); do
    grep -q "listening" "$home/DFS$i.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "listening" "$home/DFS$i.log" || { cat "$home/DFS$i.log"; echo "DFS$i did not start" >&2; exit 1; }
done
# Alice's dfc.conf, with every server's key pinned.
{
  cat conf/dfc.conf
  for i in 1 2 3 4; do
    echo "Fingerprint DFS$i $(grep -o 'key SHA256:[A-Za-z0-9+/]*' "$home/DFS$i.log" | head -1 | cut -d' ' -f2)"
  done
} >"$home/dfc.conf"
chmod 600 "$home/dfc.conf"
"$build/fuse_client/dfcfs" "$home/dfc.conf" "$mnt"
echo "4 servers on 127.0.0.1:10001-10004 (data and logs in $home)"
echo "mounted at $mnt as Alice: try  ls -l $mnt; cp README.md $mnt/; cat $mnt/README.md"
echo "command line: $build/fuse_client/dfc $home/dfc.conf list"
echo "stop with: scripts/cluster.sh stop"
