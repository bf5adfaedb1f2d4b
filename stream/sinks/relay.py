"""A network output in a child process: `NetworkRelay` hands the muxed bytes (FLV, MPEG-TS, WebM) to a child
that writes them to the URL through FFmpeg's protocols (rtmp, tcp, udp, srt).

Why a process: PyAV opens an output URL with `avio_open`, holding the GIL and without FFmpeg's interrupt
callback or `rw_timeout`, so an RTMP server that accepts the connection and never answers froze every thread
and every signal handler of the job. Here the job never calls network code: it writes to a pipe with a
deadline, and a child that does not connect within `open_timeout_s`, or takes nothing for `write_timeout_s`,
is killed. The child ends itself too: SIGALRM (default action, no Python needed) while it connects, EOF on
its input, and on Linux the death of the job (PR_SET_PDEATHSIG).

Child protocol: one line on stdout, `open` once connected or `error <reason>`; then bytes on stdin are
written as they come (`flush_packets`), and a later failure is one `error <reason>` line before it exits 1.
"""
from __future__ import annotations

import contextlib
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time

READ_CHUNK = 1 << 16
POLL_S = 0.05                    # how often a wait looks at the deadline and at `cancel()`


class RelayError(OSError):
    """The relay could not connect, stalled, or lost the connection; `str()` is the reason, for one line."""


class NetworkRelay:
    """A file-like object (`write`) for a PyAV output container whose bytes go to `url` from a child process.

    `open_timeout_s` bounds the connection (and handshake); `write_timeout_s` how long a receiver may take
    nothing before the stream counts as stalled. `cancel()` (any thread) ends every wait at once. Two threads
    of its own move the bytes (blocking pipe I/O, so it works alike on every OS): `p3m-relay-out` writes to the
    child, `p3m-relay-in` reads its status lines; both end when the child does.
    """

    def __init__(self, url: str, *, open_timeout_s: float = 10.0, write_timeout_s: float = 5.0) -> None:
        self.url, self.write_timeout_s = url, write_timeout_s
        self.bytes_written = 0
        self._cancelled = threading.Event()
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._chunks: queue.Queue[bytes | None] = queue.Queue()
        self._moved = threading.Condition()      # notified as bytes reach the pipe (or writing fails)
        self._queued = 0                         # bytes handed to `p3m-relay-out`
        self._write_error: OSError | None = None
        self._proc = subprocess.Popen(
            # By path, and with -P (-I before 3.11): the child imports PyAV, nothing of this package or folder.
            [sys.executable, "-P" if sys.version_info >= (3, 11) else "-I", os.path.abspath(__file__), url,
             str(open_timeout_s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
            start_new_session=True)     # Ctrl-C reaches the job, which ends the child itself
        self._threads = [threading.Thread(target=self._read_lines, name="p3m-relay-in", daemon=True),
                         threading.Thread(target=self._write_chunks, name="p3m-relay-out", daemon=True)]
        self._threads[0].start()
        try:
            line = self._next_line(open_timeout_s + 1.0)
        except BaseException:
            self.kill()
            raise
        if line != "open":
            self.kill()
            if line is None:
                raise RelayError(f"no answer within {open_timeout_s:g} s (the server accepted nothing, or "
                                 "never finished the handshake)")
            raise RelayError(line.removeprefix("error ").strip() or "the relay ended without a word")
        self._threads[1].start()

    def _read_lines(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in self._proc.stdout:
                self._lines.put(raw.decode(errors="replace").strip())
        self._lines.put(None)

    def _next_line(self, timeout_s: float) -> str | None:
        """The child's next status line; None when it gives none within `timeout_s` or ended without one."""
        deadline = time.monotonic() + timeout_s
        while not self._cancelled.is_set() and (left := deadline - time.monotonic()) > 0:
            try:
                return self._lines.get(timeout=min(left, POLL_S))
            except queue.Empty:
                continue
        return None

    def _write_chunks(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            view = memoryview(chunk)
            while view:
                try:
                    sent = self._proc.stdin.write(view) or 0     # unbuffered: a pipe may take part of it
                except (OSError, ValueError) as e:               # the child ended, or its pipe was closed
                    with self._moved:
                        self._write_error = e if isinstance(e, OSError) else BrokenPipeError(str(e))
                        self._moved.notify_all()
                    return
                view = view[sent:]
                with self._moved:
                    self.bytes_written += sent
                    self._moved.notify_all()

    def write(self, data: bytes) -> int:
        """Send `data` to the child and return once the pipe took it; RelayError once nothing moved for
        `write_timeout_s`, the child ended, or `cancel()` was called."""
        with self._moved:
            self._queued += len(data)
            target = self._queued
            self._chunks.put(bytes(data))
            progress, last = self.bytes_written, time.monotonic()
            while self.bytes_written < target:
                if self._cancelled.is_set():
                    raise RelayError("cancelled")
                if self._write_error is not None or self._proc.poll() is not None:
                    raise RelayError(self._reason())
                if self.bytes_written != progress:
                    progress, last = self.bytes_written, time.monotonic()
                elif time.monotonic() - last > self.write_timeout_s:
                    raise RelayError(f"stalled: the receiver took nothing for {self.write_timeout_s:g} s")
                self._moved.wait(POLL_S)
        return len(data)

    def finish(self, timeout_s: float | None = None) -> None:
        """End of stream: close the child's input and wait (bounded) for it to send the rest; RelayError if
        it failed or did not finish in time (it is killed then)."""
        self._chunks.put(None)                   # `p3m-relay-out` stops after what is queued
        deadline = time.monotonic() + (self.write_timeout_s if timeout_s is None else timeout_s)
        with self._moved:
            while self.bytes_written < self._queued and self._write_error is None and \
                    time.monotonic() < deadline and not self._cancelled.is_set():
                self._moved.wait(POLL_S)
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        while self._proc.poll() is None and time.monotonic() < deadline and not self._cancelled.is_set():
            time.sleep(POLL_S)
        if self._proc.poll() is None:
            self.kill()
            raise RelayError(f"stalled: the last bytes were not taken within {self.write_timeout_s:g} s")
        if self._proc.returncode != 0:
            raise RelayError(self._reason())

    def cancel(self) -> None:
        """End every wait now (thread-safe); the caller then kills or finishes."""
        self._cancelled.set()

    def kill(self) -> None:
        """Stop the child at once (idempotent) and reap it; its pipes close, which ends both threads."""
        if self._proc.poll() is None:
            self._proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        self._chunks.put(None)
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=1)

    def _reason(self) -> str:
        """Why the child stopped: its `error` line, else how it ended."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=1)
        line = self._next_line(0.5)
        if line and line.startswith("error "):
            return line.removeprefix("error ").strip()
        return f"the connection ended (relay exit status {self._proc.returncode})"


# --- the child -----------------------------------------------------------------------------------------------

def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the job that started it dies (it could block in a write forever)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG


def _say(line: str) -> None:
    sys.stdout.write(" ".join(line.split()) + "\n")
    sys.stdout.flush()


def relay_main(url: str, open_timeout_s: float) -> int:
    """Connect to `url`, say `open`, then copy stdin there until EOF; 0 on success, 1 after `error ...`."""
    import av

    signal.signal(signal.SIGINT, signal.SIG_IGN)       # the job decides when this process ends
    _die_with_parent()
    signal.signal(signal.SIGALRM, signal.SIG_DFL)      # ends a connect stuck in C code holding the GIL
    signal.alarm(max(1, math.ceil(open_timeout_s)))
    try:
        out = av.open(url, "w", format="data", container_options={"flush_packets": "1"})
        stream = out.add_data_stream()
        out.start_encoding()
    except (av.FFmpegError, OSError, ValueError) as e:
        _say(f"error {getattr(e, 'strerror', None) or e}")
        return 1
    signal.alarm(0)
    _say("open")
    index = 0
    try:
        while chunk := os.read(0, READ_CHUNK):
            packet = av.Packet(chunk)
            packet.stream, packet.pts, packet.dts = stream, index, index
            out.mux(packet)
            index += 1
        out.close()
    except (av.FFmpegError, OSError) as e:
        _say(f"error {getattr(e, 'strerror', None) or e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(relay_main(sys.argv[1], float(sys.argv[2])))
