"""What every PyAV input and output shares: URL detection, printf patterns, a sane frame rate, and how an
input is opened (timeouts for anything but a local file, RTSP over TCP)."""
from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any, TypeVar

import av
from av.container import InputContainer
from av.video.stream import VideoStream

DEFAULT_FPS = Fraction(25)
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
PRINTF_FIELD = re.compile(r"%0?(\d*)d")
T = TypeVar("T")
INPUT_TIMEOUT_S = (10.0, 5.0)     # (open, read without a packet): a dead server or a stalled camera raises


class Abandoned(Exception):
    """`abandonable` gave up waiting because the caller was asked to stop."""


def is_url(spec: str) -> bool:
    """True for a network input PyAV opens itself (rtsp, http, ...), never checked on disk."""
    return spec.lower().startswith(URL_SCHEMES)


def is_printf_pattern(spec: str) -> bool:
    """True for a file name holding one printf integer field, like `frames/%05d.png`."""
    return len(PRINTF_FIELD.findall(os.path.basename(spec))) == 1


def sane_fps(*candidates: Fraction | None) -> Fraction:
    """The first plausible rate (0 < fps ≤ 1000) among `candidates`, else `DEFAULT_FPS`."""
    for rate in candidates:
        if rate is not None and 0 < rate <= 1000:
            return Fraction(rate)
    return DEFAULT_FPS


def error_reason(error: BaseException) -> str:
    """FFmpeg's message without the errno and file name PyAV wraps it in (else the error's text or name)."""
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def stream_fps(stream: VideoStream) -> Fraction:
    """A video stream's frame rate: its average rate, else FFmpeg's guess, else its base rate, else the default."""
    return sane_fps(stream.average_rate, stream.guessed_rate, stream.base_rate)


def open_input(spec: str, *, format: str | None = None, options: dict[str, str] | None = None,
               **kwargs: Any) -> InputContainer:
    """`av.open(spec)` for reading a file, URL or device (`format`), with what network and device inputs need.

    Timeouts are PyAV's own, which every protocol honours (FFmpeg's `timeout` option means "listen" to rtmp);
    a local file gets none (PyAV's timeout callback takes the GIL on every read). Raises PyAV's errors.
    """
    if spec.lower().startswith(("rtsp://", "rtsps://")):
        options = {"rtsp_transport": "tcp", **(options or {})}    # UDP loses packets (grey smears) on busy links
    timeout = None if format is None and os.path.isfile(spec) else INPUT_TIMEOUT_S
    # metadata_errors: a tag that is not UTF-8 (a damaged or foreign file) must not stop the file opening
    opened = functools.partial(av.open, spec, "r", format=format, options=options or {}, timeout=timeout,
                               metadata_errors="replace", **kwargs)
    if timeout is None or threading.current_thread() is not threading.main_thread():
        return opened()
    return abandonable(opened)


_open_threads: list[threading.Thread] = []     # every open thread started; an abandoned one may still block


def blocked_opens() -> bool:
    """True while an open thread is still inside FFmpeg (one Ctrl-C abandoned): finalising the interpreter beside
    such a thread can crash it (stream/cli/__init__.py exits without finalising then)."""
    return any(thread.is_alive() for thread in _open_threads)


def abandonable(open_thing: Callable[[], T], should_stop: Callable[[], bool] | None = None) -> T:
    """`open_thing()` on a helper thread while this one waits in short joins, so that a stop gets through at
    once instead of after FFmpeg's open timeout: Ctrl-C (a KeyboardInterrupt, main thread) or `should_stop()`
    turning true (raises Abandoned). A result that arrives after the caller gave up is closed."""
    result: dict[str, Any] = {}
    lock = threading.Lock()

    def run() -> None:
        try:
            thing = open_thing()
        except BaseException as e:  # noqa: BLE001 - raised in the caller's thread
            result["error"] = e
            return
        with lock:
            if result.get("abandoned"):
                thing.close()
            else:
                result["value"] = thing

    thread = threading.Thread(target=run, name="p3m-open", daemon=True)
    _open_threads[:] = [t for t in _open_threads if t.is_alive()] + [thread]
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.05)
            if should_stop is not None and should_stop() and thread.is_alive():
                raise Abandoned("stopped while opening")
    except BaseException:
        with lock:
            result["abandoned"] = True
            if "value" in result:
                result.pop("value").close()
        raise
    if "error" in result:
        raise result["error"]
    return result["value"]
