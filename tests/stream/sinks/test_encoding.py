"""What the file sinks and the network stream sink share: one encoder set-up, one timestamp rule, one way to
round a matte; each checked on what both really write."""
from __future__ import annotations

import contextlib
import io
import socket
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from helpers.media import FPS, H, W, decoded_video, square_alpha, square_image, synthetic_frames, times

from stream.frames import Frame, alpha_to_uint8
from stream.sinks.files import open_sink
from stream.sinks.live import StreamSink

MS = Fraction(1, 1000)


@contextlib.contextmanager
def tcp_receiver() -> Iterator[tuple[str, io.BytesIO]]:
    """A tcp:// URL and, once the block ends, the bytes sent to it. The kernel completes the connection and
    buffers the few kilobytes a test sends, so nothing in this process has to read while PyAV (holding the
    GIL) writes."""
    with socket.create_server(("127.0.0.1", 0), backlog=1) as server:
        received = io.BytesIO()
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}", received
        server.settimeout(10)
        connection, _ = server.accept()
        with connection:
            while chunk := connection.recv(65536):
                received.write(chunk)
        received.seek(0)


def streamed(frames: list[Frame], *, transparent: bool = False) -> io.BytesIO:
    """What a StreamSink sends to a tcp:// receiver for `frames` (MPEG-TS, or WebM when transparent)."""
    with tcp_receiver() as (url, received):
        sink = StreamSink(url, width=W, height=H, fps=FPS, transparent=transparent)
        for frame in frames:
            sink.write(frame)
        sink.close()
    return received


def first_frame(media: io.BytesIO | Path) -> av.VideoFrame:
    with av.open(media if isinstance(media, io.BytesIO) else str(media)) as container:
        return next(container.decode(video=0))


def tagged_frames(count: int, *, transparent: bool) -> list[Frame]:
    """Frames as the compositor leaves them: a composite, or an RGBA output over a matte."""
    frames = []
    for i in range(count):
        image, alpha = square_image(i), square_alpha(i)
        output = np.dstack([image, alpha_to_uint8(alpha)]) if transparent else image
        frames.append(Frame(index=i, image=image, alpha=alpha, output=output, pts=40 * i, time_base=MS))
    return frames


@pytest.mark.parametrize("transparent, file_name", [(False, "composite.mp4"), (True, "overlay.webm")])
def test_a_file_and_a_stream_of_one_format_get_the_same_encoder_set_up(tmp_path: Path, transparent: bool,
                                                                       file_name: str) -> None:
    frames = tagged_frames(6, transparent=transparent)
    path = tmp_path / file_name
    with open_sink(str(path), width=W, height=H, fps=Fraction(FPS), time_base=MS,
                   kind="transparent" if transparent else "composite") as sink:
        for frame in frames:
            sink.write(frame)
    from_file, from_stream = first_frame(path), first_frame(streamed(frames, transparent=transparent))
    setup = lambda f: (f.format.name, f.colorspace, f.color_range)     # noqa: E731
    assert setup(from_stream) == setup(from_file)
    assert from_file.colorspace not in (0, 2) and from_file.color_range == 1   # tagged: BT.601 matrix, limited range


def test_a_file_and_a_stream_stamp_the_same_times_when_the_input_goes_back(tmp_path: Path) -> None:
    pts = [0, 40, 80, 120, 80, 200, 160, 280, 320, 360, 400, 440]         # ms, twice going back
    path = tmp_path / "recording.mp4"
    with open_sink(str(path), width=W, height=H, fps=Fraction(FPS), time_base=MS) as sink:
        for frame in synthetic_frames(pts, MS):
            sink.write(frame)
    with av.open(streamed(synthetic_frames(pts, MS))) as container:
        from_stream = times(list(container.decode(video=0)))
    from_file = times(decoded_video(path))
    assert len(from_file) == len(from_stream) == len(pts)
    assert np.all(np.diff(from_file) > 0)
    np.testing.assert_allclose(from_stream - from_stream[0], from_file - from_file[0], atol=1e-4)


def test_a_matte_file_and_a_transparent_png_round_the_alpha_alike(tmp_path: Path) -> None:
    alpha = np.tile((np.arange(W, dtype=np.float32) + 0.5) / 255, (H, 1))     # halfway between two levels
    alpha[:, -4:] = [-0.1, 1.1, 0.0, 1.0]                                         # and out of range
    frame = Frame(index=0, image=square_image(0), alpha=alpha, pts=0, time_base=Fraction(1, FPS))
    sinks = {kind: open_sink(str(tmp_path / name), width=W, height=H, fps=Fraction(FPS), kind=kind)
             for kind, name in (("matte", "matte.mkv"), ("transparent", "png/%02d.png"))}
    for sink in sinks.values():
        sink.write(frame)
        sink.close()
    want = alpha_to_uint8(alpha)
    matte = decoded_video(tmp_path / "matte.mkv")[0].to_ndarray(format="gray")        # FFV1: lossless
    png = cv2.imread(str(tmp_path / "png" / "00.png"), cv2.IMREAD_UNCHANGED)[..., 3]
    np.testing.assert_array_equal(matte, want)
    np.testing.assert_array_equal(png, want)


@pytest.mark.parametrize("preset, deadline, cpu_used", [("veryfast", "realtime", "7"), ("fast", "realtime", "5"),
                                                         ("medium", "good", "4"), (None, None, "4")])
def test_preset_maps_onto_vp9s_own_speed_settings(tmp_path: Path, preset: str | None, deadline: str | None,
                                                  cpu_used: str) -> None:
    out = tmp_path / "out.webm"
    sink = open_sink(str(out), width=W, height=H, fps=Fraction(FPS), kind="transparent", preset=preset)
    options = sink._stream.options
    assert (options.get("deadline"), options["cpu-used"], options["row-mt"], options["tile-columns"]) == (
        deadline, cpu_used, "1", "2")
    frame = synthetic_frames([0])[0]
    frame.output = np.dstack([frame.image, np.full((H, W), 255, np.uint8)])
    sink.write(frame)
    sink.close()
    assert len(decoded_video(out)) == 1                     # libvpx took the settings
