"""DeviceCutout (stream/stages/device_cutout.py): matting, smoothing and compositing as one device stage give what
the three stages give one after another. Runs on the CPU; the CUDA case runs in bench/gpu_check.sh."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers.doubles import KeyMatter, cuda, scene, scene_frames

from model.matters.p3mnet import P3MNetMatter
from stream.jobs.assembly import plan_stages
from stream.jobs.demo import make_demo_clip
from stream.stages.compositing import Compositor
from stream.stages.device_cutout import DeviceCutout
from stream.stages.device_matting import DeviceMatting
from stream.stages.matting import MattingStage
from stream.stages.smoothing import TemporalSmoother


def three_stages(matting: MattingStage, path: DeviceMatting, background: str, smoothing: bool, batch: list,
                 estimation: bool = True):
    """The reference: the device path's alphas, then the CPU smoother and compositor frame by frame."""
    smoother, compositor = TemporalSmoother(enabled=smoothing), Compositor(background, estimation)
    for group in path.batches(batch):
        path.alphas(group)
    return [compositor.process(smoother.process(f)) for f in batch]


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "bg.png"
    cv2.imwrite(str(path), scene(7, 50, 70)[..., ::-1])
    return str(path)


@pytest.mark.parametrize("background", ["green", "#1e90ff", "blur:8", "transparent", "picture"])
@pytest.mark.parametrize("smoothing", [True, False])
@pytest.mark.parametrize("estimation", [True, False])
def test_one_device_stage_gives_what_the_three_stages_give(background, smoothing, estimation, picture):
    background = picture if background == "picture" else background
    matting = MattingStage(KeyMatter(), infer_size=64, batch_size=2)
    reference = three_stages(matting, DeviceMatting(KeyMatter(), matting.infer_shape, batch_size=2), background,
                             smoothing, scene_frames(5), estimation)
    fused = DeviceCutout(matting, TemporalSmoother(enabled=smoothing), Compositor(background, estimation),
                         device_path=DeviceMatting(KeyMatter(), matting.infer_shape, batch_size=2))
    frames = scene_frames(5)
    mine = fused.process_batch(frames[:2]) + fused.process_batch(frames[2:4]) + [fused.process(frames[4])]
    channels = 4 if background == "transparent" else 3
    # rounding of the blend; the blur is computed on the device too (Blur.render_tensor: within 2-4 levels)
    bound = 4 if background.startswith("blur") else 1
    for a, b in zip(reference, mine):
        np.testing.assert_allclose(b.alpha, a.alpha, rtol=0, atol=1e-6)
        assert b.output.shape == (96, 160, channels) and b.output.dtype == np.uint8
        difference = np.abs(b.output.astype(int) - a.output.astype(int))
        if estimation:      # the device solves F as pymatting does, sweeping all pixels at once (not alike);
            # a transparent output carries F itself, not F·α: its edge colours differ more
            edge = (8, 1.0) if channels == 4 else (3, 0.5)
            assert difference.max() <= bound + edge[0] and difference.mean() < edge[1]
        else:
            assert difference.max() <= bound
    if smoothing:       # smoothing really ran: the moving edge differs from the raw alpha of the same frame
        raw = scene_frames(5)
        DeviceMatting(KeyMatter(), matting.infer_shape).alphas(raw)
        assert np.abs(mine[3].alpha - raw[3].alpha).max() > 0.01


class SlotSpy(DeviceMatting):
    """A device path that fails when a batch is queued into an upload slot that a batch in flight holds."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.held: set[int] = set()
        self.used: list[int] = []

    def matte_on_device(self, frames, slot=0):
        assert slot not in self.held, f"slot {slot} is still in flight"
        self.held.add(slot)
        self.used.append(slot)
        return super().matte_on_device(frames, slot)

    def start_download(self, *tensors):
        download, slot = super().start_download(*tensors), self.used[-1]
        wait = download.wait

        def freed():
            self.held.discard(slot)
            return wait()

        download.wait = freed
        return download


def overlapped_run(stage: DeviceCutout, batches: list[list]) -> list[list]:
    """What each call gave back: process_batch per list, process for a single frame, then flush."""
    out = [stage.process_batch(b) if isinstance(b, list) else [stage.process(b)] for b in batches]
    return out + [stage.flush()]


@pytest.mark.parametrize("background", ["green", "blur:8", "transparent"])
def test_overlapped_batches_come_back_one_call_later_with_the_same_results(background):
    matting = MattingStage(KeyMatter(), infer_size=64, batch_size=2)

    def cutout(overlap: bool, path: DeviceMatting) -> DeviceCutout:
        return DeviceCutout(matting, TemporalSmoother(), Compositor(background), device_path=path, overlap=overlap)

    plain = scene_frames(9)
    cutout(False, DeviceMatting(KeyMatter(), matting.infer_shape, batch_size=2)).process_batch(plain)
    spy = SlotSpy(KeyMatter(), matting.infer_shape, batch_size=2)
    mine = scene_frames(9)
    calls = overlapped_run(cutout(True, spy), [mine[0:2], mine[2:4], mine[4], mine[5:8], mine[8:9]])
    # a call gives back the batch queued before it; process() its own frame; a 3-frame list is two batches
    assert calls == [[], mine[0:2], [mine[4]], mine[2:4] + mine[5:7], [mine[7]], [mine[8]]]
    assert spy.used == [0, 1, 0, 0, 1, 0] and not spy.held
    for a, b in zip(plain, mine):
        np.testing.assert_array_equal(b.alpha, a.alpha)
        np.testing.assert_array_equal(b.output, a.output)


def test_on_the_cpu_the_smoother_works_between_the_model_and_the_upsampling():
    matting, smoother, compositor = MattingStage(KeyMatter(), infer_size=64), TemporalSmoother(), Compositor()
    stages = plan_stages(matting, smoother, compositor)
    assert [getattr(s, "name", None) for s in stages] == ["matting", None, "upsampling", None]
    assert stages[1] is smoother and stages[3] is compositor
    model, _, upsampling = stages[:3]
    two, one = scene_frames(3), scene_frames(3)
    model.process_batch(two[:2])
    model.process(two[2])
    for a, b in zip(two, one):
        assert a.alpha.shape == matting.infer_shape(*a.image.shape[:2])    # what the smoother gets
        upsampling.process(a)
        matting.process(b)
        np.testing.assert_array_equal(a.alpha, b.alpha)   # without the smoother: the unsplit stage's alpha
        assert "matting" not in a.extras          # the shrunk image does not travel further
    with pytest.raises(ValueError, match="CUDA"):
        DeviceCutout(matting, smoother, compositor)


def test_the_offline_plan_overlaps_batches_unless_told_not_to_and_the_live_worker_never_does():
    # A keyword, passed down to the one DeviceCutout: the gpu bench's A/B row turns it off per job.
    matting = MattingStage(KeyMatter(), infer_size=64, batch_size=2)
    matting.device_path = DeviceMatting(KeyMatter(), matting.infer_shape, batch_size=2)   # as on CUDA
    (default,) = plan_stages(matting, TemporalSmoother(), Compositor())
    (plain,) = plan_stages(matting, TemporalSmoother(), Compositor(), overlap_batches=False)
    (worker,) = plan_stages(matting, TemporalSmoother(), Compositor(), live=True, overlap_batches=True)
    assert (default.overlap, plain.overlap, worker.overlap) == (True, False, False)
    (bare,) = plan_stages(matting, TemporalSmoother(), Compositor(), keep_alpha=False)
    assert not bare.keep_alpha and worker.keep_alpha


@cuda
@pytest.mark.parametrize("background", ["green", "transparent"])
def test_cuda_device_cutout_gives_what_the_three_stages_give(seed3_pth, background):
    # P3M-Net in a CUDA graph, batches of 2: the smoother must keep a copy of the graph's reused output.
    matting = MattingStage(P3MNetMatter(seed3_pth, device="cuda"), infer_size=256, batch_size=2)
    (fused,) = plan_stages(matting, TemporalSmoother(), Compositor(background))
    mine = scene_frames(5, height=288, width=512)
    for start in range(0, 5, 2):
        fused.process_batch(mine[start:start + 2])
    assert fused.flush() == mine[4:]             # offline, the stage keeps its last batch in flight
    reference = three_stages(matting, matting.device_path, background, True, scene_frames(5, height=288, width=512))
    for a, b in zip(reference, mine):
        np.testing.assert_allclose(b.alpha, a.alpha, rtol=0, atol=1e-5)
        assert np.abs(b.output.astype(int) - a.output.astype(int)).max() <= 1
    fused.close()


@cuda
def test_cuda_overlapped_batches_give_what_one_batch_at_a_time_gives(seed3_pth, tmp_path):
    # The host fills one upload slot while the GPU works on the other: a missing wait would show here as
    # another frame's pixels. A video background's frames are uploaded on the same queue.
    matting = MattingStage(P3MNetMatter(seed3_pth, device="cuda"), infer_size=256, batch_size=4)
    background = make_demo_clip(tmp_path / "bg.mp4", seconds=0.5, size=(640, 360))

    def run(overlap: bool) -> list:
        stage = DeviceCutout(matting, TemporalSmoother(), Compositor(str(background)), overlap=overlap)
        mine = scene_frames(26, height=720, width=1280)
        for start in range(0, 26, 4):
            stage.process_batch(mine[start:start + 4])
        stage.flush()
        stage.compositor.close()
        return mine

    plain, overlapped = run(False), run(True)
    for a, b in zip(plain, overlapped):
        np.testing.assert_allclose(b.alpha, a.alpha, rtol=0, atol=1e-5)
        assert np.abs(b.output.astype(int) - a.output.astype(int)).max() <= 1
    matting.close()


def test_without_keep_alpha_only_the_composite_comes_back():
    matting = MattingStage(KeyMatter(), infer_size=64)
    path = DeviceMatting(KeyMatter(), matting.infer_shape)
    kept = DeviceCutout(matting, TemporalSmoother(), Compositor("green"), device_path=path).process(scene_frames(1)[0])
    bare = DeviceCutout(matting, TemporalSmoother(), Compositor("green"), device_path=path,
                        keep_alpha=False).process(scene_frames(1)[0])
    assert bare.alpha is None and kept.alpha is not None
    np.testing.assert_array_equal(bare.output, kept.output)


def test_without_a_compositor_only_the_smoothed_alpha_comes_back(tmp_path):
    # The live job's matting worker on CUDA with a video background: smoothing on the device, the compose
    # path composites.
    matting = MattingStage(KeyMatter(), infer_size=64)
    path = DeviceMatting(KeyMatter(), matting.infer_shape)
    reference = three_stages(matting, path, "green", True, scene_frames(5))
    matting.device_path = path                       # as a CUDA matter's stage has one
    video = Compositor(str(make_demo_clip(tmp_path / "bg.mp4", seconds=0.2, size=(64, 48))))
    (stage,) = plan_stages(matting, TemporalSmoother(), video, live=True)
    video.close()
    assert isinstance(stage, DeviceCutout) and stage.name == "matting+smoothing on device"
    mine = [stage.process(frame) for frame in scene_frames(5)]
    for a, b in zip(reference, mine):
        np.testing.assert_allclose(b.alpha, a.alpha, rtol=0, atol=1e-6)
        assert b.output is None
    raw = scene_frames(5)
    path.alphas(raw)
    assert np.abs(mine[3].alpha - raw[3].alpha).max() > 0.01      # smoothing really ran on the moving edge
    with pytest.raises(ValueError, match="keep the alpha"):
        DeviceCutout(matting, TemporalSmoother(), None, keep_alpha=False)

