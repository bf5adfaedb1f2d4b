"""Matte tuning in the pipeline: where its stage goes, spill suppression at compositing (host and tensor
paths alike), the job's matte tuned as model/matte_tuning.py says, and the options in presets."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from helpers.media import decoded_video

from model.matte_tuning import MatteTuning
from model.matters.base import Matter
from model.matters.registry import register_matter
from stream import cutout
from stream.cli.main import main
from stream.frames import Frame
from stream.jobs.assembly import plan_stages
from stream.jobs.config import CutoutConfig, LiveConfig, load_config
from stream.stages.compositing import Compositor
from stream.stages.matte_tuning import MatteTuningStage
from stream.stages.matting import MattingStage
from stream.stages.smoothing import TemporalSmoother


class RampMatter(Matter):
    """Alpha = the red channel / 255: the clip's red square at 1, a soft 0.3 over the dark blue background."""

    name = "tuning-ramp"

    def describe(self) -> str:
        return "ramp test double"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return np.maximum(rgb[..., 0] / 255, 0.3).astype(np.float32)


register_matter("tuning-ramp", lambda weights, device, precision: RampMatter())


def test_tuning_goes_after_the_upsampling_and_before_the_compositor():
    compositor, tuning = Compositor("green"), MatteTuningStage(MatteTuning(threshold=0.5))
    stages = plan_stages(MattingStage(RampMatter(), infer_size=64), TemporalSmoother(), compositor, tuning=tuning)
    assert [getattr(s, "name", type(s).__name__) for s in stages][-3:] == ["upsampling", "matte-tuning", "Compositor"]
    live = plan_stages(MattingStage(RampMatter(), infer_size=64), TemporalSmoother(), compositor, tuning=tuning,
                       live=True)
    assert live[-1] is tuning


def screen_lit_frame() -> Frame:
    image = np.zeros((4, 4, 3), np.uint8)
    image[:] = (120, 200, 100)                   # skin with a green screen's cast
    image[2:] = (200, 150, 120)                  # skin
    return Frame(index=0, image=image, alpha=np.ones((4, 4), np.float32))


@pytest.mark.parametrize("background", ["#000000", "transparent"])
def test_spill_is_taken_off_the_composited_colours_on_the_host_and_on_tensors(background):
    torch = pytest.importorskip("torch")
    frame = screen_lit_frame()
    compositor = Compositor(background, foreground_estimation=False, spill="green")
    out = compositor.process(frame).output
    assert tuple(out[0, 0, :3]) == (120, 120, 100) and tuple(out[3, 3, :3]) == (200, 150, 120)
    on_tensors = compositor.composite_tensor(torch.from_numpy(frame.image)[None], torch.from_numpy(frame.alpha)[None],
                                             [frame.image])[0].numpy()
    np.testing.assert_array_equal(on_tensors, out)
    plain = Compositor(background, foreground_estimation=False).process(screen_lit_frame()).output
    assert tuple(plain[0, 0, :3]) == (120, 200, 100)


def test_the_job_writes_the_tuned_matte(tmp_path, clip):
    plain, tuned = tmp_path / "plain.mkv", tmp_path / "tuned.mkv"
    common = dict(model="tuning-ramp", infer_size=64, smoothing=False, upsample="bilinear", quiet=True,
                  background="transparent")
    cutout(clip, tmp_path / "a.mov", alpha_out=str(plain), **common)
    cutout(clip, tmp_path / "b.mov", alpha_out=str(tuned), threshold=0.5, erode=1, **common)
    before = [f.to_ndarray(format="gray").astype(np.float32) / 255 for f in decoded_video(plain)]
    after = [f.to_ndarray(format="gray").astype(np.float32) / 255 for f in decoded_video(tuned)]
    expected = [MatteTuning(threshold=0.5, erode=1).apply(a) for a in before]
    assert len(after) == len(before) and before[0].mean() > 0.25            # the background was 0.3
    np.testing.assert_allclose(after, expected, atol=2 / 255)                # the background now 0


def test_the_options_live_in_presets_and_on_the_command_line(tmp_path, clip):
    preset = tmp_path / "keyed.yaml"
    preset.write_text("threshold: 0.2\nerode: 1\ndilate: 2\nfeather: 3\nspill: green\n")
    config = load_config(preset)
    assert config.tuning == MatteTuning(0.2, 1, 2, 3) and config.spill == "green"
    assert LiveConfig.load(preset).tuning == config.tuning                  # live takes them too
    assert not CutoutConfig().tuning.active and CutoutConfig().spill == "off"
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(main, ["cutout", str(clip), "-o", str(out), "--model", "tuning-ramp", "--infer-size",
                                       "64", "-c", str(preset), "--feather", "1", "-q"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--threshold", "1.5"], "error: threshold: 1.5 is outside [0, 0.99]"),
    (["--erode", "-2"], "error: erode: -2 is outside [0, 100]"),
])
def test_bad_tuning_is_one_error_line(tmp_path, clip, args, message):
    result = CliRunner().invoke(main, ["cutout", str(clip), "-o", str(tmp_path / "x.mp4"), *args])
    assert result.exit_code == 1 and result.output.splitlines()[0] == message
