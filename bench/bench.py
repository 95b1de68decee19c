#!/usr/bin/env python3
"""dfs benchmarks: figures and ratios, not pass/fail timings.

Starts 4 real dfs_server processes on 127.0.0.1 in a temp folder, then measures
  - dfc put / get of a large file (default 2 GiB): wall time, throughput, peak
    RSS of dfc and of every server (VmHWM),
  - GET traffic: bytes received from the servers / file size,
  - with --fuse: cp in and out through a dfcfs mount (default 4 GiB) and the
    peak RSS of dfcfs.
Usage: bench/bench.py [--build build] [--size-mib 2048] [--fuse] [--fuse-size-mib 4096]
"""
import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing benchlib
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import hwm_kib, make_file, start_servers, write_client_conf  # noqa: E402


def run_measured(argv, **kw):
    """Runs argv; returns (seconds, peak RSS KiB of that child, completed process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.monotonic()
    # A fresh process per measurement: ru_maxrss of children is a max over all
    # of them, so run through a tiny wrapper that reports its own child's peak.
    wrapper = [sys.executable, "-c",
               "import resource,subprocess,sys;"
               "p=subprocess.run(sys.argv[1:]);"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,file=sys.stderr);"
               "sys.exit(p.returncode)"] + argv
    p = subprocess.run(wrapper, capture_output=True, text=True, **kw)
    seconds = time.monotonic() - t0
    lines = p.stderr.strip().splitlines()
    peak = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    p.stderr = "\n".join(lines[:-1])
    del before
    return seconds, peak, p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--fuse", action="store_true")
    ap.add_argument("--fuse-size-mib", type=int, default=4096)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args()
    server_bin = os.path.join(args.build, "dfs_server", "dfs_server")
    dfc_bin = os.path.join(args.build, "fuse_client", "dfc")
    dfcfs_bin = os.path.join(args.build, "fuse_client", "dfcfs")
    work = tempfile.mkdtemp(prefix="dfs-bench-", dir=os.environ.get("BENCH_DIR"))
    servers = []
    mount_proc = None
    mnt = os.path.join(work, "mnt")
    try:
        ports, keys = start_servers(server_bin, work, servers)
        conf = os.path.join(work, "dfc.conf")
        write_client_conf(conf, ports, keys)

        src = os.path.join(work, "big.bin")
        print(f"generating {args.size_mib} MiB of test data ...", flush=True)
        make_file(src, args.size_mib)
        size = os.path.getsize(src)

        secs, rss, p = run_measured([dfc_bin, conf, "put", src])
        if p.returncode != 0:
            raise SystemExit(f"put failed: {p.stderr}")
        print(f"put  {size / 2**20:.0f} MiB: {secs:.1f} s, {size / 2**20 / secs:.0f} MiB/s, dfc peak RSS {rss / 1024:.1f} MiB")
        put_server_rss = [hwm_kib(s.pid) for s in servers]

        out = os.path.join(work, "back.bin")
        secs, rss, p = run_measured([dfc_bin, "--stats", conf, "get", "big.bin", "-o", out])
        if p.returncode != 0:
            raise SystemExit(f"get failed: {p.stderr}")
        m = re.search(r"received (\d+) bytes", p.stderr)
        received = int(m.group(1)) if m else 0
        print(f"get  {size / 2**20:.0f} MiB: {secs:.1f} s, {size / 2**20 / secs:.0f} MiB/s, dfc peak RSS {rss / 1024:.1f} MiB")
        same = subprocess.run(["cmp", "-s", src, out]).returncode == 0
        print(f"get  content identical: {same}")
        print(f"get  bytes received from servers: {received} = {received / size:.5f} x file size (classic GET: 2.0 x)")
        print("server peak RSS (VmHWM) after put: " + ", ".join(f"DFS{i+1} {k/1024:.1f} MiB" for i, k in enumerate(put_server_rss)))
        print("server peak RSS (VmHWM) after get: " + ", ".join(f"DFS{i+1} {hwm_kib(s.pid)/1024:.1f} MiB" for i, s in enumerate(servers)))
        os.unlink(out)

        if args.fuse:
            os.unlink(src)
            os.makedirs(mnt)
            mount_log = os.path.join(work, "dfcfs.log")

            def mount():
                log = open(mount_log, "w")
                proc = subprocess.Popen([dfcfs_bin, conf, mnt, "-f", "--log-level", "info"],
                                        stderr=log)
                for _ in range(100):
                    if os.path.ismount(mnt):
                        break
                    time.sleep(0.1)
                return proc

            def unmount(proc):
                subprocess.run(["fusermount3", "-u", mnt], check=True)
                proc.wait(timeout=60)
                with open(mount_log) as f:
                    m = re.findall(r"traffic: received (\d+) bytes", f.read())
                return int(m[-1]) if m else 0

            fsrc = os.path.join(work, "fuse.bin")
            make_file(fsrc, args.fuse_size_mib)
            fsize = os.path.getsize(fsrc)
            mount_proc = mount()
            t0 = time.monotonic()
            subprocess.run(["cp", fsrc, os.path.join(mnt, "fuse.bin")], check=True)
            t_in = time.monotonic() - t0
            rss_in = hwm_kib(mount_proc.pid)
            unmount(mount_proc)
            mount_proc = mount()  # a fresh mount: its traffic is the read alone
            fout = os.path.join(work, "fuse.back")
            t0 = time.monotonic()
            subprocess.run(["cp", os.path.join(mnt, "fuse.bin"), fout], check=True)
            t_out = time.monotonic() - t0
            rss_out = hwm_kib(mount_proc.pid)
            received = unmount(mount_proc)
            mount_proc = None
            same = subprocess.run(["cmp", "-s", fsrc, fout]).returncode == 0
            print(f"mount cp in  {fsize / 2**20:.0f} MiB: {t_in:.1f} s, {fsize / 2**20 / t_in:.0f} MiB/s, dfcfs peak RSS {rss_in / 1024:.1f} MiB")
            print(f"mount cp out {fsize / 2**20:.0f} MiB: {t_out:.1f} s, {fsize / 2**20 / t_out:.0f} MiB/s, dfcfs peak RSS {rss_out / 1024:.1f} MiB, identical: {same}")
            print(f"mount read: bytes received from servers {received} = {received / fsize:.5f} x file size")
    finally:
        if mount_proc:
            subprocess.run(["fusermount3", "-u", mnt])
            try:
                mount_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                mount_proc.kill()
        for s in servers:
            s.send_signal(signal.SIGTERM)
        for s in servers:
            try:
                s.wait(timeout=10)
            except subprocess.TimeoutExpired:
                s.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
