"""Start `ferlab serve` in a child process on a free loopback port (browser tests and the load benchmark)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["free_port", "serve_subprocess"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_subprocess(extra_args: Sequence[str] = (), *, cwd: str | Path | None = None, log: IO[bytes] | None = None,
                     timeout: float = 180.0) -> Iterator[str]:
    """Yield the URL once /healthz answers 200; RuntimeError if the server exits or stays silent past `timeout`."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "ferlab", "serve", "--port", str(port), *extra_args]
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ferlab serve exited with code {proc.returncode}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ferlab serve did not answer /healthz within {timeout:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
