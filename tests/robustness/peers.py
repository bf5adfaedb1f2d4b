"""Misbehaving network peers for the robustness tests: small TCP servers on 127.0.0.1 in their own process
(a server thread here could be frozen by PyAV holding the GIL), each ending by itself after `LIFETIME_S`
and stopped by PID when the test ends."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from helpers.ports import free_port, wait_listening

LIFETIME_S = 60

# the tail of a server script: accepts every connection until its lifetime ends, touches the marker file, and
# never answers nor reads
_HOLD_SILENTLY = """
server.settimeout(0.2)
held, end = [], time.time() + float(sys.argv[3])
while time.time() < end:
    try:
        held.append(server.accept()[0])
        open(sys.argv[2], "a").close()
    except socket.timeout:
        pass
"""

# a dead RTMP server
SILENT = """
import socket, sys, time
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(8)
""" + _HOLD_SILENTLY

# accepts one connection, reads `argv[4]` bytes (frames went out), then closes it (a server that goes away)
CLOSES = """
import socket, sys
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(1)
server.settimeout(float(sys.argv[3]))
connection = server.accept()[0]
open(sys.argv[2], "a").close()
connection.settimeout(float(sys.argv[3]))
total = 0
while total < int(sys.argv[4]) and (data := connection.recv(65536)):
    total += len(data)
connection.close()
"""

# sends the file argv[4] to the first client and hangs up, then accepts (and holds) others in silence:
# a camera URL that ends and whose server then never answers a reconnect
SENDS_THEN_SILENT = """
import socket, sys, time
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(8)
server.settimeout(float(sys.argv[3]))
connection = server.accept()[0]
connection.sendall(open(sys.argv[4], "rb").read())
connection.close()
""" + _HOLD_SILENTLY

# accepts one connection and reads everything until the client hangs up; prints the byte count
READS = """
import socket, sys
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(1)
server.settimeout(float(sys.argv[3]))
connection = server.accept()[0]
open(sys.argv[2], "a").close()
connection.settimeout(float(sys.argv[3]))
total = 0
while data := connection.recv(65536):
    total += len(data)
print(total)
"""


@contextlib.contextmanager
def peer(script: str, tmp_path: Path, *args: str) -> Iterator[tuple[int, Path, subprocess.Popen]]:
    """(port, marker touched on the first connection, process) of a server running `script`."""
    port, marker = free_port(), tmp_path / f"connected-{time.monotonic_ns()}"
    proc = subprocess.Popen([sys.executable, "-c", script, str(port), str(marker), str(LIFETIME_S), *args],
                            stdout=subprocess.PIPE, text=True)
    try:
        wait_listening(port)
        yield port, marker, proc
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def relays_for(port: int) -> list[int]:
    """PIDs of relay processes (stream/sinks/relay.py) still sending to `port`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                if any(part.endswith(b"relay.py") for part in cmdline) and any(
                        f":{port}".encode() in part for part in cmdline):
                    pids.append(int(entry.name))
    return pids
