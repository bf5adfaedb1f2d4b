"""The offline job end to end: nothing lost (frames, time, audio), the matte where the person is."""
from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers.doubles import RedKeyMatter
from helpers.media import H, N, W, audio_packets, decoded_alpha, decoded_video, times

from model.errors import P3MError
from model.matters.registry import register_matter
from stream import cutout
from stream.cli.main import main
from stream.jobs import offline


class InterruptingMatter(RedKeyMatter):
    """Sends the process SIGINT while matting frame 8, as a user pressing Ctrl-C half-way; a frame takes 50 ms,
    so the first frames are written by then even on loaded cores (else nothing is kept, rightly)."""

    calls = 0

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        type(self).calls += 1
        time.sleep(0.05)
        if type(self).calls == 8:
            os.kill(os.getpid(), signal.SIGINT)
        return super().__call__(rgb)


class SteppedRedKeyMatter(RedKeyMatter):
    """RedKeyMatter that takes sizes in steps of `size_multiple` only, as P3M-Net takes steps of 32."""

    def __init__(self, size_multiple: int) -> None:
        self.size_multiple = size_multiple

    def describe(self) -> str:
        return f"red-key test double in steps of {self.size_multiple}"


class HeavyRedKeyMatter(RedKeyMatter):
    """RedKeyMatter that says its CPU work spreads over every core."""

    uses_every_core = True


register_matter("red-key-32", lambda weights, device, precision: SteppedRedKeyMatter(32))
register_matter("red-key-64", lambda weights, device, precision: SteppedRedKeyMatter(64))
register_matter("red-key-heavy", lambda weights, device, precision: HeavyRedKeyMatter())
register_matter("interrupting", lambda weights, device, precision: InterruptingMatter())


def matte_frames(path: Path) -> list[np.ndarray]:
    """A lossless grayscale matte video as float arrays in [0, 1]."""
    return [f.to_ndarray(format="gray").astype(np.float32) / 255 for f in decoded_video(path)]


def test_every_frame_timestamp_and_audio_packet_survives(clip, tmp_path):
    out, matte = tmp_path / "out.mp4", tmp_path / "matte.mkv"
    result = cutout(clip, out, model="red-key", infer_size=64, alpha_out=str(matte), quiet=True)
    assert result.frames == N and not result.interrupted
    frames_in, frames_out = decoded_video(clip), decoded_video(out)
    assert len(frames_out) == len(frames_in) == N
    assert (frames_out[0].width, frames_out[0].height) == (W, H)
    np.testing.assert_allclose(times(frames_out), times(frames_in), atol=1e-6)
    assert audio_packets(out) == audio_packets(clip)
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert abs(float(a.duration - b.duration) / av.time_base) < 0.05


def test_no_audio_drops_the_sound_track(clip, tmp_path):
    out = tmp_path / "silent.mp4"
    result = CliRunner().invoke(main, ["cutout", str(clip), "-o", str(out), "--model", "red-key", "--infer-size", "64",
                                       "--no-audio", "--quiet"])
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as container:
        assert not container.streams.audio and container.streams.video[0].frames == N


def test_alpha_is_high_on_the_shape_and_low_elsewhere(clip, tmp_path):
    matte = tmp_path / "matte.mkv"
    cutout(clip, tmp_path / "out.mp4", model="red-key", infer_size=64, alpha_out=str(matte), quiet=True)
    mattes = matte_frames(matte)
    assert len(mattes) == N
    for i, alpha in enumerate(mattes):
        inside = np.zeros_like(alpha, bool)
        inside[20:28, 6 + i:14 + i] = True            # the square's interior (conftest.square_image)
        outside = np.ones_like(alpha, bool)
        outside[14:34, i:20 + i] = False
        assert alpha[inside].mean() > 0.9, i
        assert alpha[outside].mean() < 0.05, i


def test_composite_puts_the_background_where_alpha_is_zero(clip, tmp_path):
    out = tmp_path / "blue.mp4"
    cutout(clip, out, model="red-key", infer_size=64, background="#0000ff", quiet=True)
    rgb = decoded_video(out)[5].to_ndarray(format="rgb24").astype(int)
    assert np.abs(rgb[40:46, 50:60] - [0, 0, 255]).max() <= 12      # background region: pure blue
    assert rgb[22:26, 10:16, 0].mean() > 200                       # the square stays red


@pytest.mark.parametrize("name", ["out.webm", "out.mov", "out.mkv", "png/%04d.png"])
def test_transparent_outputs_carry_the_computed_alpha(clip, tmp_path, name):
    out, matte = tmp_path / name, tmp_path / "matte.mkv"
    out.parent.mkdir(exist_ok=True)
    cutout(clip, out, model="red-key", infer_size=64, background="transparent", alpha_out=str(matte), quiet=True)
    expected = [(m * 255).round() for m in matte_frames(matte)]
    if name.endswith(".png"):
        files = sorted(out.parent.glob("*.png"))
        got = [cv2.imread(str(f), cv2.IMREAD_UNCHANGED)[..., 3].astype(np.float32) for f in files]
    else:
        got = [a.astype(np.float32) for a in decoded_alpha(out)]
    assert len(got) == len(expected) == N
    error = np.abs(np.stack(got) - np.stack(expected))
    assert error.mean() < 1.0 and np.percentile(error, 99.9) <= 16


def test_bundled_model_finds_the_person_in_a_real_portrait(shared, tmp_path):
    stem = "p_015cd10e"
    image = cv2.cvtColor(cv2.imread(str(shared / "media/portraits/images" / f"{stem}.jpg")), cv2.COLOR_BGR2RGB)
    image = cv2.resize(image, (480, 320), interpolation=cv2.INTER_AREA)
    reference = cv2.imread(str(shared / "media/portraits/p3m_r34_alpha" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    reference = cv2.resize(reference, (480, 320), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    clip = tmp_path / "portrait.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "12"})
        stream.width, stream.height, stream.pix_fmt = 480, 320, "yuv420p"
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    matte = tmp_path / "matte.mkv"
    result = cutout(clip, tmp_path / "out.mp4", model="mediapipe", alpha_out=str(matte), quiet=True)
    assert "MediaPipe" in result.model and result.frames == 3
    alpha = matte_frames(matte)[-1]
    assert alpha[reference > 0.95].mean() > 0.9           # high on the person
    assert alpha[reference < 0.05].mean() < 0.1           # low on the background
    assert np.abs(alpha - reference).mean() < 0.05        # close to P3M-Net's matte overall


def test_ctrl_c_half_way_keeps_a_playable_file(clip, tmp_path):
    out = tmp_path / "out.mp4"
    InterruptingMatter.calls = 0
    # without foreground estimation: its first frame waits for pymatting's import, a second on loaded cores
    result = CliRunner().invoke(main, ["cutout", str(clip), "-o", str(out), "--model", "interrupting",
                                       "--infer-size", "64", "--no-foreground-estimation", "--quiet"])
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output
    written = len(decoded_video(out))
    assert 0 < written < N
    assert f"kept the {written} frames" in result.output


@pytest.mark.parametrize("options, words", [
    ({"background": "plaid"}, "plaid"),
    ({"background": "/nope/bg.png"}, "bg.png"),
    ({"model": "nonsense"}, "nonsense"),
    ({"model": "p3mnet"}, "weights"),
    ({"model": "red-key-32", "infer_size": 500}, "infer_size"),
])
def test_bad_options_fail_before_any_output(clip, tmp_path, options, words):
    out = tmp_path / "out.mp4"
    with pytest.raises(P3MError, match=words):
        cutout(clip, out, quiet=True, **options)
    assert list(tmp_path.iterdir()) == []


def test_blur_faces_hides_the_face_in_the_cut_out(tmp_path):
    from model.faces import FaceDetector
    from stream.jobs.demo import make_demo_clip

    clip = make_demo_clip(tmp_path / "astronaut.mp4", seconds=0.2)
    plain, hidden = tmp_path / "plain.mp4", tmp_path / "hidden.mp4"
    cutout(clip, plain, model="mediapipe", infer_size=256, quiet=True)
    CliRunner().invoke(main, ["cutout", str(clip), "-o", str(hidden), "--model", "mediapipe", "--infer-size", "256",
                              "--blur-faces", "--blur-style", "gaussian", "--face-model", "full", "--quiet"],
                       catch_exceptions=False)
    source = decoded_video(clip)[-1].to_ndarray(format="rgb24")
    before = decoded_video(plain)[-1].to_ndarray(format="rgb24")
    after = decoded_video(hidden)[-1].to_ndarray(format="rgb24")
    detector = FaceDetector("full", tile_levels=0)        # the face is ~11 % of the frame's width: past short range
    try:
        faces = detector(source)
        assert len(faces) == 1                               # the astronaut's face
        x0, y0, x1, y1, _ = faces[0]
        detail = [cv2.Laplacian(cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
                  for img in (before, after)]
        assert detail[1] < 0.2 * detail[0]                  # hidden with the option, intact without it
        assert not any(_overlaps(f, faces[0]) for f in detector(after))
    finally:
        detector.close()


def _overlaps(a: tuple, b: tuple) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_a_job_runs_opencv_and_torch_on_one_thread_beside_a_light_model(clip, tmp_path):
    import torch

    before = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(2)
    torch.set_num_threads(2)
    try:
        cutout(clip, tmp_path / "out.mp4", model="red-key", infer_size=64, quiet=True)
        assert (cv2.getNumThreads(), torch.get_num_threads()) == (1, 1)
    finally:
        cv2.setNumThreads(before[0])
        torch.set_num_threads(before[1])


def test_the_bundled_models_cpu_job_runs_without_torch(clip: Path, tmp_path: Path):
    # torch takes ~1.1 s to import; the default CPU job (MediaPipe, the OpenCV guided filter, the smoother in
    # numpy) uses none of it, so `p3m cutout` starts that much sooner.
    code = (f"import sys; from stream import cutout; cutout({str(clip)!r}, {str(tmp_path / 'out.mp4')!r}, "
            "model='mediapipe', quiet=True); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "False"



@pytest.mark.parametrize("model, size, step", [("red-key-32", 500, 32), ("red-key-64", 96, 64)])
def test_an_infer_size_the_model_cannot_take_is_refused_naming_the_model_before_any_output_opens(
        clip, tmp_path, monkeypatch, model, size, step):
    # One check, the matting stage's, against the model's own step, made before the job opens its outputs.
    opened = []
    real = offline.open_sinks
    monkeypatch.setattr(offline, "open_sinks", lambda *args, **kwargs: opened.append(args) or real(*args, **kwargs))
    result = CliRunner().invoke(main, ["cutout", str(clip), "-o", str(tmp_path / "out.mp4"), "--model", model,
                                       "--infer-size", str(size), "--quiet"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: infer_size {size} does not suit red-key test double in steps of {step}: "
                      f"it needs a positive multiple of {step}"]
    assert opened == [] and list(tmp_path.iterdir()) == []


def test_an_infer_size_off_p3mnets_steps_suits_a_model_that_takes_any(clip, tmp_path):
    # The bundled model and this double take any size: 100 is not refused as if every model were P3M-Net.
    assert cutout(clip, tmp_path / "out.mp4", model="red-key", infer_size=100, quiet=True).frames == N


def test_a_model_that_uses_every_core_gets_every_torch_thread(clip, tmp_path):
    # The job asks the Matter interface, not for P3M-Net by name.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cutout(clip, tmp_path / "out.mp4", model="red-key-heavy", infer_size=64, upsample="bilinear", quiet=True)
        assert torch.get_num_threads() == (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)


def test_the_jobs_know_models_only_through_the_matter_interface():
    jobs = Path(offline.__file__).parent
    imported = {node.module for path in jobs.glob("*.py") for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) and node.module}
    matters = {name for name in imported if name.startswith("model.matters")}
    assert matters == {"model.matters.base", "model.matters.registry"}, matters     # not model.matters.p3mnet


@pytest.mark.parametrize("overlap", [True, False])
def test_the_offline_job_passes_overlap_batches_down_to_the_stage_plan(clip, tmp_path, monkeypatch, overlap):
    # The bench's A/B row sets it per job; a module global that nothing read let that row measure nothing.
    from stream.jobs import assembly
    from stream.jobs.config import load_config

    asked = []
    real = assembly.plan_stages
    monkeypatch.setattr(assembly, "plan_stages", lambda *args, **kwargs: asked.append(kwargs) or real(*args, **kwargs))
    settings = load_config(model="red-key", infer_size=64)
    assert offline.run_cutout(str(clip), str(tmp_path / "out.mp4"), settings, quiet=True,
                              overlap_batches=overlap).frames == N
    assert [kwargs["overlap_batches"] for kwargs in asked] == [overlap]
