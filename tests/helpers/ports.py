"""Loopback ports for the tests' own servers (127.0.0.1 only)."""
from __future__ import annotations

import socket
import time


def free_port() -> int:
    """A port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 20.0) -> None:
    """Until something binds `port` (without connecting, which would use up a one-client server). A server that
    is a fresh interpreter importing PyAV can take seconds under the full suite on 2 cores."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port}")
