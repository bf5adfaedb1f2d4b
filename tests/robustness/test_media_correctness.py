"""What real files hold, through `p3m cutout`: frames the decoder drops (reported, the others kept at their
times), AVI with B-frames (the input's presentation times), audio packets of any size or position (all
copied), and sizes declared far beyond what fits in memory (refused from the header, before decoding)."""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result
from helpers import robust_media as rm

from stream.cli.main import main
from stream.frames import Frame
from stream.sinks.encoding import Clock

FAST = ["-m", "key", "--infer-size", "64", "--preset", "ultrafast", "-q"]


def cutout(*args: object) -> Result:
    return CliRunner().invoke(main, ["cutout", *FAST, *map(str, args)])


def packet_times(path: Path, kind: str = "video") -> list[float]:
    with av.open(str(path)) as container:
        return sorted(float(p.pts * p.time_base) for p in container.demux(**{kind: 0}) if p.size and p.pts is not None)


def audio_payloads(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.size]


def matching_input_frames(frames: Path, clip: Path) -> list[int]:
    """For each PNG in `frames` (a cut-out of `clip`), the input frame it shows: where the output kept the
    foreground it holds that frame's pixels, so the input frame closest there."""
    inputs = np.stack([f.to_ndarray(format="rgb24") for f in rm.decode(clip)]).astype(float)
    found = []
    for png in sorted(frames.iterdir()):
        out = cv2.imread(str(png))[..., ::-1].astype(float)
        kept = np.abs(out - (0, 255, 0)).sum(axis=-1) > 60          # not the green background
        found.append(int(np.argmin(np.abs(inputs[:, kept] - out[kept]).mean(axis=(1, 2)))))
    return found


# --- frames the decoder drops --------------------------------------------------------------------------

def test_dropped_frames_are_reported_with_count_and_times_and_the_rest_keep_their_times(tmp_path):
    clip = rm.write_mjpeg_avi(tmp_path / "damaged.avi", frames=50, damaged=range(20, 26))
    out = tmp_path / "out.mp4"
    result = cutout(clip, "-o", out)
    assert result.exit_code == 0, result.output
    assert ("damaged.avi: 6 input frames could not be decoded (0.80-1.00 s): they are missing from the output"
            in result.stderr)
    assert "44 frames (6 damaged input frames skipped)" in result.stderr.splitlines()[-1]
    kept = [t for i, t in enumerate(packet_times(clip)) if not 20 <= i < 26]
    assert rm.frame_times(out) == pytest.approx(kept)                    # 1.04 s after the gap, as in the input
    assert audio_payloads(out) == audio_payloads(clip)                    # the sound whole, so in sync


def test_frames_without_a_usable_time_get_the_previous_time_plus_one_frame_never_a_new_number(caplog):
    # A frame without a time (or going back) between frames that have theirs: the ones after keep their own.
    clock = Clock(Fraction(1, 25), Fraction(25), "in.avi")
    pts = [0, 1, 2, 3, 4, None, 8, 9, 3, 11, 12]
    with caplog.at_level(logging.WARNING):
        got = [clock.next(Frame(index=i, image=np.zeros((2, 2, 3), np.uint8), pts=p, time_base=Fraction(1, 25)))
               for i, p in enumerate(pts)]
    assert got == [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12]
    assert caplog.text.count("in.avi: timestamps missing at frame 5") == 1


# --- AVI with B-frames ---------------------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_avi_with_b_frames_keeps_the_input_presentation_times_and_frame_order(tmp_path, codec):
    clip = rm.write_avi_with_b_frames(tmp_path / "bframes.avi", frames=30, codec=codec)
    out = tmp_path / "out.mp4"
    result = cutout(clip, "-o", out)
    assert result.exit_code == 0, result.output
    assert "timestamps" not in result.stderr                               # nothing to warn about: all kept
    assert rm.frame_times(out) == pytest.approx(packet_times(clip))        # the times the input declares
    # exact pixels, each frame's own matte: the frames' order
    assert cutout(clip, "-o", tmp_path / "frames/%05d.png", "--no-smoothing").exit_code == 0
    assert matching_input_frames(tmp_path / "frames", clip) == list(range(30))


# --- audio packets of any size and position ----------------------------------------------------------------

def test_every_audio_packet_is_copied_when_the_parser_splits_chunks_with_repeated_times(tmp_path):
    frames = rm.ac3_frames(20)
    stream = b"".join(frames)
    clip = rm.write_avi_with_ac3(tmp_path / "unaligned.avi", [stream[i:i + 1000] for i in range(0, len(stream), 1000)])
    for ext in ("mp4", "mkv"):
        out = tmp_path / f"out.{ext}"
        result = cutout(clip, "-o", out)
        assert result.exit_code == 0, result.output
        assert audio_payloads(out) == audio_payloads(clip) == frames


def test_a_first_audio_packet_shorter_than_the_rest_is_kept_or_its_loss_is_named(tmp_path):
    frames = rm.ac3_frames(20)
    chunks = [frames[0][-200:], *frames[1:]]                # the file starts mid-frame: a 200-byte tail first
    clip = rm.write_avi_with_ac3(tmp_path / "cut.avi", chunks)
    assert audio_payloads(clip) == chunks
    result = cutout(clip, "-o", tmp_path / "out.mkv")
    assert result.exit_code == 0, result.output
    assert audio_payloads(tmp_path / "out.mkv") == chunks                   # every packet, byte for byte
    result = cutout(clip, "-o", tmp_path / "out.mp4")
    assert result.exit_code == 0, result.output
    assert audio_payloads(tmp_path / "out.mp4") == chunks[1:]               # FFmpeg's MP4 muxer drops the tail...
    assert ("cut.avi: audio stream 1 starts with 200 bytes that are not a whole AC3 frame (at 0.000 s); MP4 files "
            "cannot hold them" in result.stderr)                            # ...and the user is told, with the fix


# --- sizes beyond memory -------------------------------------------------------------------------------

@pytest.mark.parametrize("width, height", [(20000, 20000), (40000, 40000)])    # the second over OpenCV's own limit
def test_huge_image_headers_are_refused_before_decoding(inputs, tmp_path, width, height):
    image = rm.write_png_header(tmp_path / "huge.png", width, height)
    for args in ([inputs / "ok.mp4", "-b", image], [image]):
        result = cutout(*args, "-o", tmp_path / "out.mp4")
        assert result.exit_code == 1, result.output
        first = result.stderr.splitlines()[0]
        assert first.startswith("error: ") and f"is {width}x{height}: over the limit of 67 megapixels" in first
    assert not (tmp_path / "out.mp4").exists()


def test_a_y4m_declaring_a_huge_size_is_refused_by_its_header(tmp_path):
    clip = rm.write_y4m_header(tmp_path / "huge.y4m", 100000, 100000)
    result = cutout(clip, "-o", tmp_path / "out.mp4")
    assert result.exit_code == 1
    assert "huge.y4m is 100000x100000: over the limit of 67 megapixels" in result.stderr.splitlines()[0]


@pytest.mark.parametrize("background, words", [("folder", "is a folder"), ("/dev/zero", "not a regular file")])
def test_a_folder_or_a_device_as_background_says_what_it_is(inputs, tmp_path, background, words):
    spec = str(inputs / background) if background == "folder" else background
    result = cutout(inputs / "ok.mp4", "-o", tmp_path / "out.mp4", "-b", spec)
    assert result.exit_code == 1 and words in result.stderr.splitlines()[0]
