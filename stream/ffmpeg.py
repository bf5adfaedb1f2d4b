"""What every PyAV input and output shares: URL detection, printf patterns and a sane frame rate."""
from __future__ import annotations

import os
import re
from fractions import Fraction

DEFAULT_FPS = Fraction(25)
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
PRINTF_FIELD = re.compile(r"%0?(\d*)d")


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
