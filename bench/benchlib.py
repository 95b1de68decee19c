"""Helpers shared by the dfs benchmarks (bench/bench.py, bench/peers).

  hwm_kib(pid)                      peak RSS (VmHWM) of a live process, KiB
  make_file(path, mib)              a file of mib MiB of incompressible bytes
  start_servers(bin, work, procs)   4 dfs_server on 127.0.0.1, free ports
  write_client_conf(path, ports, keys)  dfc.conf for Alice, keys pinned
"""
import os
import re
import subprocess
import threading

USER = "Alice"
PASSWORD = "SimplePassword"


def hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def make_file(path, mib):
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(mib):
            # Vary each MiB cheaply so no two are alike.
            f.write(i.to_bytes(8, "little") + chunk[8:])


def _drain(stream, path):
    with open(path, "a") as log:
        for line in stream:
            log.write(line)
            log.flush()


def start_servers(server_bin, work, procs, count=4, log_dir=None, new_session=False,
                  hashed=False):
    """Starts `count` dfs_server processes on 127.0.0.1, port 0, data in
    work/DFS1.. and users in work/dfs.conf; appends each Popen to procs as soon
    as it runs (so the caller can stop them even when a later one fails).
    Returns (ports, keys); a key is None when the build has no TLS.
    With log_dir, each server's stderr goes to log_dir/DFSi.log and its stdout
    is drained into the same file after start-up (else it stays an unread pipe).
    With hashed, each server gets its own work/DFSi.conf holding only its
    verifier (--hash-password), as a real deployment (scripts/cluster.sh) does;
    else all share work/dfs.conf with the plain password.
    Raises SystemExit when a server does not start."""
    conf = os.path.join(work, "dfs.conf")
    if not hashed:
        with open(conf, "w") as f:
            f.write(f"{USER} {PASSWORD}\n")
    ports = []
    keys = []
    for i in range(1, count + 1):
        if hashed:
            conf = os.path.join(work, f"DFS{i}.conf")
            line = subprocess.run([server_bin, "--hash-password", USER, "--name", f"DFS{i}"],
                                  input=PASSWORD + "\n", capture_output=True, text=True,
                                  check=True).stdout.strip()
            with open(conf, "w") as f:
                f.write(line + "\n")
            os.chmod(conf, 0o600)
        stderr = open(os.path.join(log_dir, f"DFS{i}.log"), "w") if log_dir else None
        p = subprocess.Popen([server_bin, os.path.join(work, f"DFS{i}"), "0", "-c", conf,
                              "--bind", "127.0.0.1"],
                             stdout=subprocess.PIPE, stderr=stderr, text=True,
                             start_new_session=new_session)
        if stderr:
            stderr.close()
        procs.append(p)
        # "dfs_server: DFSi key SHA256:..." then "dfs_server: listening on 127.0.0.1:PORT"
        key = None
        m = None
        while True:
            line = p.stdout.readline()
            k = re.search(r" key (SHA256:[A-Za-z0-9+/]+)", line)
            if k:
                key = k.group(1)
            m = re.search(r"127\.0\.0\.1:(\d+)", line)
            if m or not line:
                break
        if not m:
            raise SystemExit(f"server {i} did not start: {line!r}")
        ports.append(int(m.group(1)))
        keys.append(key)
        if log_dir:
            threading.Thread(target=_drain, args=(p.stdout, os.path.join(log_dir, f"DFS{i}.log")),
                             daemon=True).start()
    return ports, keys


def write_client_conf(path, ports, keys):
    with open(path, "w") as f:
        for i, port in enumerate(ports, 1):
            f.write(f"Server DFS{i} 127.0.0.1:{port}\n")
        f.write(f"Username: {USER}\nPassword: {PASSWORD}\n")
        for i, key in enumerate(keys, 1):
            if key:  # TLS builds: pin each server's key
                f.write(f"Fingerprint DFS{i} {key}\n")
    os.chmod(path, 0o600)
