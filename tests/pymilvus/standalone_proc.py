"""`quiver standalone` as a child process, for the tests and scripts that need a server of their
own (auth on, a memory limit, a full disk, a descriptor limit, ...)."""

import os
import socket
import subprocess
import time

START_TIMEOUT_S = 60.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, data_dir, log_path, args=(), env=None, wrap=()):
    """Starts `binary standalone` on a free port with its data in `data_dir` and its output in
    `log_path`; returns (process, port) once it listens. `args` are more flags, `env` the
    environment (default: this one), `wrap` a command to run it under (e.g. prlimit)."""
    port = free_port()
    log = open(log_path, "w+")
    proc = subprocess.Popen(
        [*wrap, binary, "standalone", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}",
         *args],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        log.seek(0)
        text = log.read()
        if "listening on" in text:
            return proc, port
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"quiver standalone did not start:\n{text[-4000:]}")
        time.sleep(0.05)


def stop(proc, timeout=30):
    proc.terminate()
    proc.wait(timeout=timeout)
