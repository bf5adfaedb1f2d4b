"""Sinks: each format round-trips size, frame count, timestamps, alpha and audio; bad outputs fail early."""
from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from helpers.doubles import Passthrough, SquareMatte
from helpers.media import (
    FPS,
    H,
    N,
    W,
    audio_packets,
    decoded_alpha,
    decoded_rgba,
    decoded_video,
    square_alpha,
    synthetic_frames,
    times,
)

from model.errors import P3MError
from stream.frames import Frame
from stream.protocols import Sink
from stream.sinks.files import open_sink, open_sinks
from stream.sinks.wrappers import TeeSink
from stream.sources.files import open_source

# Matroska and WebM cannot store negative timestamps, so FFmpeg shifts every stream by the AAC priming
# delay (1024 samples = 21.3 ms at 48 kHz); A/V sync is kept, the whole file starts that much later.
PRIMING_S = 1024 / 48000 + 1e-3


def transcode(src: Path, out: Path, stage: object, **options: object) -> int:
    """Run every frame of `src` through `stage` into `out`; returns frames written."""
    with open_source(str(src)) as source, open_sinks(str(out), source, **options) as sink:
        for frame in source:
            sink.write(stage.process(frame))
    return sink.frames_written


def input_times(clip: Path) -> np.ndarray:
    return times(decoded_video(clip))


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
def test_composite_keeps_size_count_times_and_copies_audio_bytes(clip: Path, tmp_path: Path, ext: str) -> None:
    out = tmp_path / f"out{ext}"
    assert transcode(clip, out, Passthrough()) == N
    frames = decoded_video(out)
    assert len(frames) == N and (frames[0].width, frames[0].height) == (W, H)
    assert frames[0].format.name == "yuv420p"
    got, want = times(frames), input_times(clip)
    assert np.allclose(got - got[0], want - want[0], atol=1e-3)
    assert abs(got[0] - want[0]) <= (PRIMING_S if ext == ".mkv" else 1e-3)
    assert audio_packets(out) == audio_packets(clip)           # same count, same bytes: copied, not re-encoded
    assert list(tmp_path.iterdir()) == [out]                    # the temporary sibling was renamed


def test_composite_webm_reencodes_audio_to_opus_with_a_warning(clip: Path, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out.webm"
    with caplog.at_level(logging.WARNING):
        assert transcode(clip, out, Passthrough()) == N
    assert "re-encoding it to libopus" in caplog.text
    with av.open(str(out)) as container:
        assert [s.codec_context.name for s in container.streams] == ["vp9", "opus"]
        seconds = sum(f.samples for f in container.decode(audio=0)) / 48000
    assert seconds == pytest.approx(N / FPS, abs=0.05)
    assert np.allclose(times(decoded_video(out)), input_times(clip), atol=1e-3)


@pytest.mark.parametrize("ext, codec, max_err, mean_err", [
    (".webm", "vp9", 24, 0.5),        # lossy VP9 alpha plane (measured: max 13, mean 0.18)
    (".mov", "prores", 1, 0.25),      # ProRes 4444 alpha is lossless; 8→10→8-bit rounding only
    (".mkv", "ffv1", 0, 0),           # FFV1 is lossless
])
def test_transparent_formats_round_trip_alpha(clip: Path, tmp_path: Path, ext: str, codec: str,
                                              max_err: int, mean_err: float) -> None:
    out = tmp_path / f"cutout{ext}"
    assert transcode(clip, out, SquareMatte(), transparent=True) == N
    frames = decoded_video(out)
    assert len(frames) == N and frames[0].width == W and frames[0].height == H
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == codec
    got, want = times(frames), input_times(clip)
    assert np.allclose(got - got[0], want - want[0], atol=1e-3)
    alphas = decoded_alpha(out)
    assert len(alphas) == N
    errors = np.stack([np.abs(a.astype(int) - np.round(square_alpha(i) * 255)) for i, a in enumerate(alphas)])
    assert errors.max() <= max_err and errors.mean() <= mean_err
    if ext != ".webm":
        assert audio_packets(out) == audio_packets(clip)


def test_png_sequence_round_trips_rgba_exactly_and_warns_audio_dropped(
        clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pattern = tmp_path / "png" / "f_%04d.png"               # the folder is created (its parent exists)
    with caplog.at_level(logging.WARNING):
        assert transcode(clip, pattern, SquareMatte(), transparent=True) == N
    assert "audio is dropped" in caplog.text
    files = sorted((tmp_path / "png").iterdir())
    assert [f.name for f in files] == [f"f_{i:04d}.png" for i in range(N)]
    for i in (0, N - 1):
        rgba = cv2.imread(str(files[i]), cv2.IMREAD_UNCHANGED)
        assert rgba.shape == (H, W, 4)
        assert np.array_equal(rgba[..., 3], np.round(square_alpha(i) * 255).astype(np.uint8))


@pytest.mark.parametrize("ext, p999_err, mean_err", [
    (".mkv", 0, 0.0),      # FFV1 gray: lossless
    (".mp4", 8, 1.5),      # H.264 crf 18 (measured: 99.9th percentile 6, mean 0.85; a lone edge pixel can be far off)
])
def test_alpha_out_writes_a_grayscale_matte(clip: Path, tmp_path: Path, ext: str, p999_err: int,
                                            mean_err: float) -> None:
    matte = tmp_path / f"matte{ext}"
    with open_source(str(clip)) as source, open_sinks(str(tmp_path / "out.mp4"), source, alpha_out=str(matte)) as sink:
        for frame in source:
            frame = SquareMatte().process(frame)
            frame.output = frame.image              # a composite main output beside the matte
            sink.write(frame)
    frames = decoded_video(matte)
    assert len(frames) == N and len(decoded_video(tmp_path / "out.mp4")) == N
    errors = np.stack([np.abs(f.to_ndarray(format="gray").astype(int) - np.round(square_alpha(i) * 255))
                       for i, f in enumerate(frames)])
    assert np.percentile(errors, 99.9) <= p999_err and errors.mean() <= mean_err
    assert audio_packets(tmp_path / "out.mp4") == audio_packets(clip)
    with av.open(str(matte)) as container:
        assert not container.streams.audio                   # the audio goes with the main output only


def odd_picture() -> np.ndarray:
    """175×143 gray blocks of 5 px (chroma-free, so 4:2:0 keeps it): a shift by a pixel would show."""
    blocks = np.random.default_rng(0).integers(16, 235, (29, 35), dtype=np.uint8)
    gray = np.kron(blocks, np.ones((5, 5), np.uint8))[:143, :175]
    return np.dstack([gray] * 3)


@pytest.mark.parametrize("odd_size, size", [("pad", (176, 144)), ("crop", (174, 142))])
def test_odd_sizes_become_even_yuv420p_with_the_picture_in_place(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                 odd_size: str, size: tuple[int, int]) -> None:
    out, picture = tmp_path / "odd.mp4", odd_picture()
    with caplog.at_level(logging.INFO, logger="stream.sinks"):
        sink = open_sink(str(out), width=175, height=143, fps=Fraction(25), crf=0, odd_size=odd_size)
        for i in range(3):
            sink.write(Frame(i, picture, pts=i, time_base=Fraction(1, 25)))
        sink.close()
    assert f"175x143 is odd; {'padded' if odd_size == 'pad' else 'cropped'} to {size[0]}x{size[1]}" in caplog.text
    frame = decoded_video(out)[0]
    assert (frame.width, frame.height, frame.format.name) == (*size, "yuv420p")
    got = frame.to_ndarray(format="rgb24")[..., 0].astype(int)
    h, w = min(143, size[1]), min(175, size[0])
    assert np.abs(got[:h, :w] - picture[:h, :w, 0]).mean() < 2                     # in place
    assert np.abs(got[:h, 1:w] - picture[:h, :w - 1, 0]).mean() > 8               # (a shift would show)
    if odd_size == "pad":                                                          # the edge repeated
        assert np.abs(got[:, 175] - got[:, 174]).mean() < 2 and np.abs(got[143] - got[142]).mean() < 2


def test_sizes_that_vp9_takes_as_they_are_are_not_changed(tmp_path: Path) -> None:
    out = tmp_path / "odd.webm"
    with open_sink(str(out), width=175, height=143, fps=Fraction(25)) as sink:
        sink.write(Frame(0, odd_picture(), pts=0, time_base=Fraction(1, 25)))
    frame = decoded_video(out)[0]
    assert (frame.width, frame.height) == (175, 143)


@pytest.mark.parametrize("pts", [
    [None] * 12,                                   # no timestamps at all
    [0, 1, 2, 3, 2, 5, 4, 7, 8, 9, 10, 11],        # going back (AVI-like)
    [0, 1, 2, None, 4, 5, 5, 7, 8, 9, 10, 11],     # a hole and a repeat
])
def test_missing_or_disordered_timestamps_still_give_a_valid_file(tmp_path: Path, pts: list[int | None],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "renumbered.mp4"
    with caplog.at_level(logging.WARNING):
        with open_sink(str(out), width=W, height=H, fps=Fraction(FPS), time_base=Fraction(1, FPS)) as sink:
            for frame in synthetic_frames(pts):
                sink.write(frame)
    assert "previous time plus one frame" in caplog.text
    got = times(decoded_video(out))
    assert len(got) == len(pts) and np.all(np.diff(got) > 0)


def test_an_error_removes_the_partial_file(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with open_source(str(clip)) as source, open_sinks(str(out), source) as sink:
            for frame in source:
                sink.write(frame)
                if frame.index == 5:
                    raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_finalises_what_was_written(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with open_source(str(clip)) as source, open_sinks(str(out), source) as sink:
            for frame in source:
                sink.write(frame)
                if frame.index == 9:
                    raise KeyboardInterrupt
    assert sink.frames_written == 10 and len(decoded_video(out)) == 10
    count, _ = audio_packets(out)
    assert 0 < count < audio_packets(clip)[0]                  # audio stops near the last frame


@pytest.mark.parametrize("output, kwargs, words", [
    ("out.mp4", {"kind": "transparent"}, "cannot write a transparent video to '.mp4'"),
    ("out.avi", {}, "cannot write a composite video to '.avi'"),
    ("out.webm", {"kind": "matte"}, "cannot write a matte video"),
    ("missing/out.mp4", {}, "output folder does not exist"),
    ("file.txt/out.mp4", {}, "output folder does not exist"),
    ("missing/deeper/%04d.png", {}, "output folder does not exist"),
])
def test_bad_outputs_fail_before_any_work(tmp_path: Path, output: str, kwargs: dict, words: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(P3MError) as info:
        open_sink(str(tmp_path / output), width=W, height=H, fps=Fraction(FPS), **kwargs)
    assert words in info.value.message and info.value.hint and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_output_equal_to_input_is_refused(clip: Path) -> None:
    with open_source(str(clip)) as source, pytest.raises(P3MError, match="would write over the input"):
        open_sinks(str(clip), source)


def test_unwritable_output_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        target = folder if os.geteuid() != 0 else Path("/proc")    # root writes anywhere but /proc
        for sink_path in (target / "out.mp4", target / "pngs" / "%04d.png"):
            with pytest.raises(P3MError, match="cannot (write to|create output folder)"):
                open_sink(str(sink_path), width=W, height=H, fps=Fraction(FPS))
    finally:
        folder.chmod(0o700)


def test_a_matte_that_fails_to_close_leaves_no_main_output(clip, tmp_path):
    class FailingClose(Sink):
        path = str(tmp_path / "matte.mkv")
        frames_written = 0

        def write(self, frame: Frame) -> None:
            self.frames_written += 1

        def close(self, *, interrupted: bool = False) -> None:
            raise OSError("disk full")

        def abort(self) -> None:
            pass

    out = tmp_path / "out.mp4"
    with open_source(str(clip)) as source:
        main = open_sinks(str(out), source)
        tee = TeeSink([main, FailingClose()])
        for frame in source:
            frame.output = frame.image
            tee.write(frame)
        with pytest.raises(OSError, match="disk full"):
            tee.close()
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_composite_colours_come_back_and_the_matrix_is_tagged(tmp_path: Path):
    # The sink converts RGB → YUV with OpenCV's BT.601 matrix; the stream must say so, or players (and
    # PyAV, which honours the tag) would invert another matrix and shift colours by ~6 levels.
    image = np.zeros((64, 96, 3), np.uint8)
    for i, colour in enumerate([(0, 255, 0), (255, 0, 0), (30, 144, 255), (200, 200, 200)]):
        image[:, 24 * i:24 * (i + 1)] = colour
    out = tmp_path / "colours.mp4"
    sink = open_sink(str(out), width=96, height=64, fps=Fraction(FPS), crf=0)
    for i in range(3):
        sink.write(Frame(index=i, image=image, output=image, pts=i, time_base=Fraction(1, FPS)))
    sink.close()
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.colorspace, stream.codec_context.color_range) == (6, 1)  # SMPTE170M, MPEG
        back = next(container.decode(stream)).to_ndarray(format="rgb24")
    inner = np.abs(back[:, 4:20].astype(int) - image[:, 4:20])          # away from the chroma edges
    assert inner.max() <= 3


def quadrants(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image and a uint8 matte that no flip, mirror or channel swap leaves alike: four flat colours,
    four alpha levels."""
    image, alpha = np.empty((height, width, 3), np.uint8), np.empty((height, width), np.uint8)
    top, bottom = slice(0, height // 2), slice(height // 2, None)
    left, right = slice(0, width // 2), slice(width // 2, None)
    for rows, cols, colour, level in [(top, left, (230, 40, 40), 255), (top, right, (40, 200, 60), 170),
                                      (bottom, left, (50, 60, 220), 85), (bottom, right, (220, 200, 40), 0)]:
        image[rows, cols], alpha[rows, cols] = colour, level
    return image, alpha


@pytest.mark.parametrize("name, kind, size, max_err", [
    ("cutout.webm", "transparent", (64, 48), 6),      # VP9 yuva420p (measured: 3)
    ("cutout.mov", "transparent", (64, 48), 3),       # ProRes 4444 (measured: 1)
    ("matte.mp4", "matte", (64, 48), 3),              # H.264 from gray (measured: 1)
    ("odd.mp4", "composite", (65, 49), 4),            # H.264 4:2:0, padded to 66x50
])
def test_sinks_that_convert_with_swscale_write_what_they_were_given(tmp_path: Path, name: str, kind: str,
                                                                    size: tuple[int, int], max_err: int) -> None:
    width, height = size
    image, alpha = quadrants(width, height)
    out = tmp_path / name
    sink = open_sink(str(out), width=width, height=height, fps=Fraction(FPS), kind=kind)
    for i in range(3):
        output = np.dstack([image, alpha]) if kind == "transparent" else image
        sink.write(Frame(index=i, image=image, alpha=alpha / np.float32(255), output=output, pts=i,
                         time_base=Fraction(1, FPS)))
    sink.close()
    if kind == "transparent":
        got, want = decoded_rgba(out)[-1], np.dstack([image, alpha])
    elif kind == "matte":
        got, want = decoded_video(out)[-1].to_ndarray(format="gray"), alpha
    else:
        got, want = decoded_video(out)[-1].to_ndarray(format="rgb24")[:height, :width], image
    inner = np.ones((height, width), bool)               # away from the quadrants' edges (chroma, blocks)
    inner[height // 2 - 4:height // 2 + 4] = inner[:, width // 2 - 4:width // 2 + 4] = False
    errors = np.abs(got.astype(int) - want)[inner]
    assert errors.max() <= max_err, errors.max()
