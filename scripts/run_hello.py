"""Start `waterflow dev`, run examples/hello.yaml through the CLI, then stop everything.

Used by ./scripts/quickstart; exits with the status of `waterflow submit --wait`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")


def main() -> int:
    port = free_port(8080)
    dev = subprocess.Popen(
        ["waterflow", "dev", "--data-dir", str(ROOT / ".waterflow"), "--port", str(port),
         "--temporal-port", str(free_port(7233)), "--ui-port", str(free_port(8233))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
    assert dev.stdout is not None
    deadline = time.monotonic() + 120
    try:
        for line in dev.stdout:
            print(f"[dev] {line}", end="")
            if "ready" in line:
                break
            if time.monotonic() > deadline:
                print("waterflow dev did not become ready in 120 s", file=sys.stderr)
                return 1
        else:
            print("waterflow dev exited before it was ready", file=sys.stderr)
            return 1
        env = {**os.environ, "WATERFLOW_SERVER": f"http://127.0.0.1:{port}"}
        return subprocess.run(  # noqa: PLW1510 - its exit status is the script's
            ["waterflow", "submit", "examples/hello.yaml", "--wait", "-i", "who=quickstart"],
            cwd=ROOT, env=env,
        ).returncode
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.kill()


if __name__ == "__main__":
    sys.exit(main())
