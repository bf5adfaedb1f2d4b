"""Freed frame buffers stay in the process (glibc), so the next frame reuses them.

By default glibc gives large freed blocks back to the kernel (those over its mmap threshold, 128 KB rising
to at most 32 MB, and the heap's top beyond its trim threshold), and each new frame buffer then faults in
fresh zeroed pages: kernel time on every frame. With the thresholds raised, freed buffers are reused
instead. Memory stays bounded: the queues are, so the heap settles at the pipeline's peak and stays there.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3          # glibc's mallopt parameters (malloc.h)


MMAP_THRESHOLD = 32 * 1024 * 1024                        # glibc's maximum: a 1080p frame (6-8 MB) stays below it
TRIM_THRESHOLD = 512 * 1024 * 1024


@functools.cache
def reuse_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once). False where the C library is not
    glibc or refuses: nothing changes then, only speed."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):        # not glibc (musl, macOS, Windows)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not done:
        log.debug("mallopt refused the thresholds: freed buffers go back to the kernel")
    return done
