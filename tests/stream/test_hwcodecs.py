"""Hardware codec selection: NVENC/NVDEC only where they really open, else the CPU codecs, and the log says which."""
from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.media import N, decoded_video, synthetic_frames

from model.matters.base import Matter
from model.matters.registry import register_matter
from stream import cutout, hwcodecs
from stream.hwcodecs import Choice, Probe, pick_decoder, pick_encoder
from stream.sinks.files import VideoFileSink
from stream.sources.files import open_source


class Zero(Matter):
    name = "zero-hw"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return np.zeros(rgb.shape[:2], np.float32)

    def describe(self) -> str:
        return "zero (hw codec test)"


register_matter("zero-hw", lambda weights, device, precision: Zero())


@pytest.fixture
def no_nvidia_here():
    """These check what this CI machine does; a machine where NVENC/NVDEC work skips them."""
    if hwcodecs.probe_encoder("h264_nvenc", 64, 48).ok or hwcodecs.probe_nvdec().ok:
        pytest.skip("NVENC or NVDEC works on this machine")


@pytest.fixture
def fake_probes(monkeypatch):
    """Probes that report what the test says, and record what was probed."""
    calls: list[str] = []
    works: set[str] = set()

    def probe_encoder(name: str, width: int = 320, height: int = 240, pix_fmt: str = "yuv420p") -> Probe:
        calls.append(f"{name} {width}x{height} {pix_fmt}")
        return Probe(name, name in works, "" if name in works else "no driver (fake)")

    def probe_nvdec() -> Probe:
        calls.append("nvdec")
        return Probe("nvdec", "nvdec" in works, "" if "nvdec" in works else "no driver (fake)")

    monkeypatch.setattr(hwcodecs, "probe_encoder", probe_encoder)
    monkeypatch.setattr(hwcodecs, "probe_nvdec", probe_nvdec)
    return calls, works


def test_here_the_cutout_uses_libx264_and_the_cpu_decoder_and_says_why(no_nvidia_here, clip: Path,
                                                                        tmp_path: Path, caplog):
    caplog.set_level(logging.DEBUG, logger="stream")
    out = tmp_path / "out.mp4"
    assert cutout(clip, out, model="zero-hw", infer_size=64, quiet=True).frames == N
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("video:"))
    assert line == "video: decode with CPU decoder (CPU; NVDEC only with hw_codecs all); encode with libx264 (CPU)"
    why = [r for r in caplog.records if r.getMessage().startswith("hardware encoders unavailable: h264_nvenc (")]
    assert why and why[0].levelno == logging.DEBUG              # the probe's reason: with -v only
    assert len(decoded_video(out)) == N


def test_hw_codecs_off_probes_nothing_and_says_so(fake_probes, clip: Path, tmp_path: Path, caplog):
    calls, _ = fake_probes
    caplog.set_level(logging.INFO, logger="stream.jobs.offline")
    cutout(clip, tmp_path / "out.mp4", model="zero-hw", infer_size=64, hw_codecs="off", quiet=True)
    assert calls == []
    assert ("video: decode with CPU decoder (CPU; NVDEC only with hw_codecs all); "
            "encode with libx264 (CPU; hardware codecs off)") in caplog.messages


@pytest.fixture
def slow_probe(monkeypatch):
    """The real probe's cache and lock around a fake that takes 0.3 s and fails; records when it ran."""
    runs: list[tuple[str, float]] = []

    @functools.cache
    def probe(name: str, width: int, height: int, pix_fmt: str) -> Probe:
        runs.append((name, time.perf_counter()))
        time.sleep(0.3)
        return Probe(name, False, "no driver (fake)")

    monkeypatch.setattr(hwcodecs, "_probe_encoder", probe)
    return runs


def test_a_prefetched_probe_runs_once_and_a_caller_during_it_gets_its_answer(slow_probe):
    thread = hwcodecs.prefetch_encoder("libx264", 64, 48, "yuv420p")
    assert thread is not None and thread.name == "p3m-codec-probe"
    choice = pick_encoder("libx264", 64, 48, "yuv420p")         # arrives while the probe runs
    assert choice == Choice("libx264", False)
    thread.join()
    assert [name for name, _ in slow_probe] == ["h264_nvenc"]
    assert hwcodecs.prefetch_encoder("libx264", 63, 48, "yuv420p") is None      # odd: nothing to probe
    assert hwcodecs.prefetch_encoder("libvpx-vp9", 64, 48, "yuv420p") is None


def test_the_cutout_probes_nvenc_while_the_model_loads(slow_probe, clip: Path, tmp_path: Path):
    loaded: list[float] = []

    def load(weights, device, precision):
        time.sleep(0.1)             # the probe thread starts meanwhile
        loaded.append(time.perf_counter())
        return Zero()

    register_matter("zero-hw-timed", load)
    assert cutout(clip, tmp_path / "out.mp4", model="zero-hw-timed", infer_size=64, quiet=True).frames == N
    (name, started), = slow_probe
    assert name == "h264_nvenc" and started < loaded[0]
    assert not [t for t in threading.enumerate() if t.name == "p3m-codec-probe"]


def test_nvenc_is_picked_when_it_opens_with_x264s_quality_and_speed(fake_probes):
    calls, works = fake_probes
    works.add("h264_nvenc")
    choice = pick_encoder("libx264", 1920, 1080, "yuv420p", crf=18, preset="veryfast")
    assert choice == Choice("h264_nvenc", True, "instead of libx264",
                            options={"rc": "vbr", "b": "0", "preset": "p2", "tune": "hq", "cq": "18"})
    assert calls == ["h264_nvenc 1920x1080 yuv420p"]      # probed at the stream's own size
    assert str(choice) == "h264_nvenc (GPU; instead of libx264)"


@pytest.mark.parametrize("codec, size, pix_fmt, hardware, why", [
    ("libx264", (1921, 1080), "yuv444p", True, "NVENC not tried for yuv444p 1921x1080"),
    ("libx264", (640, 480), "yuv420p", False, "hardware codecs off"),
    ("libvpx-vp9", (640, 480), "yuva420p", True, ""),
    ("prores_ks", (640, 480), "yuva444p10le", True, ""),
])
def test_what_nvenc_does_not_do_stays_on_the_cpu_unprobed(fake_probes, codec, size, pix_fmt, hardware, why):
    calls, works = fake_probes
    works.add("h264_nvenc")
    assert pick_encoder(codec, *size, pix_fmt, hardware=hardware) == Choice(codec, False, why)
    assert calls == []


def test_nvdec_is_picked_only_when_it_decodes(fake_probes):
    _, works = fake_probes
    assert pick_decoder() == Choice("CPU decoder", False, "NVDEC unavailable: no driver (fake)")
    works.add("nvdec")
    choice = pick_decoder()
    assert choice.hardware and choice.name == "NVDEC" and choice.hwaccel is not None
    assert choice.hwaccel.allow_software_fallback     # streams NVDEC cannot decode fall back to the CPU


def test_probes_really_open_codecs_and_remember_the_answer():
    assert hwcodecs.probe_encoder("libx264", 64, 48).ok           # the probe itself works on a codec that exists
    assert hwcodecs.probe_decoder("h264").ok
    missing = hwcodecs.probe_encoder("no_such_encoder")
    assert not missing.ok and missing.detail
    assert hwcodecs.probe_encoder("no_such_encoder") is missing     # the cached answer, not a new probe
    assert set(hwcodecs.report()) == {"h264_nvenc", "hevc_nvenc", "h264_cuvid", "nvdec (cuda hwaccel)"}


def test_a_sink_and_a_source_asked_for_hardware_work_here_on_the_cpu(no_nvidia_here, clip: Path, tmp_path: Path):
    with open_source(str(clip), hw_decode=True) as source:
        assert source.decoder.name == "CPU decoder" and not source.decoder.hardware
        assert sum(1 for _ in source) == N
    sink = VideoFileSink(str(tmp_path / "x.mp4"), width=64, height=48, fps=25, hw_codecs=True)
    assert sink.encoder.name == "libx264" and not sink.encoder.hardware
    for frame in synthetic_frames(list(range(5))):
        sink.write(frame)
    sink.close()
    assert len(decoded_video(tmp_path / "x.mp4")) == 5


def test_nvdec_is_tried_only_with_hw_codecs_all(fake_probes, clip: Path, tmp_path: Path, caplog):
    calls, _ = fake_probes
    caplog.set_level(logging.INFO, logger="stream.jobs.offline")
    cutout(clip, tmp_path / "auto.mp4", model="zero-hw", infer_size=64, quiet=True)
    assert "nvdec" not in calls
    cutout(clip, tmp_path / "all.mp4", model="zero-hw", infer_size=64, hw_codecs="all", quiet=True)
    assert "nvdec" in calls
    assert any(m.startswith("video: decode with CPU decoder (CPU; NVDEC unavailable: no driver (fake))")
               for m in caplog.messages)
