"""Offline batching: the pipeline hands a batching stage several frames; alphas equal batch 1's."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers.doubles import ListSink
from helpers.media import N, decoded_video, square_image

from model.errors import P3MError
from model.matters.base import Matter
from model.matters.p3mnet import P3MNetMatter
from model.matters.registry import register_matter
from model.settings import ConfigError
from stream import cutout
from stream.cli.main import main
from stream.frames import Frame
from stream.jobs.config import load_config
from stream.jobs.offline import run_cutout
from stream.pipeline.runner import Pipeline
from stream.stages.matting import MattingStage


class RedKey(Matter):
    """Alpha 1 on the red square, a soft ramp elsewhere (so upsampling has something to do)."""

    name = "red-key-batch"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        red = (rgb[..., 0].astype(np.float32) - rgb[..., 2]) / 255
        return np.clip(red, 0, 1)

    def describe(self) -> str:
        return "red key (batching test)"


register_matter("red-key-batch", lambda weights, device, precision: RedKey())


class CountingRedKey(RedKey):
    """RedKey that asks for batches of 3 and records the batch sizes it is given."""

    offline_batch = 3
    batches: list[int] = []

    def matte_batch(self, rgbs):
        CountingRedKey.batches.append(len(rgbs))
        return super().matte_batch(rgbs)


register_matter("red-key-counting", lambda weights, device, precision: CountingRedKey())


class Recorder:
    """A stage that records how it was called."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.calls: list[int] = []        # batch sizes; 0 for a plain process()

    def process(self, frame: Frame) -> Frame:
        self.calls.append(0)
        return frame

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        self.calls.append(len(frames))
        return frames


def _frames(n: int) -> list[Frame]:
    return [Frame(index=i, image=square_image(i)) for i in range(n)]


@pytest.mark.parametrize("policy, calls", [("offline", [3, 3, 1]), ("live", [0] * 7)])
def test_offline_pipelines_batch_and_live_ones_do_not(policy, calls):
    stage, sink = Recorder(3), ListSink()
    stats = Pipeline(_frames(7), [stage], sink, policy=policy, capacity=2 if policy == "live" else 4).run()
    if policy == "offline":
        assert stage.calls == calls
        assert [f.index for f in sink.frames] == list(range(7))
        assert stats.processed == stats.per_stage["Recorder"] == stats.written == 7


class SlowSink(ListSink):
    def write(self, frame: Frame) -> None:
        time.sleep(0.002)
        super().write(frame)


def test_queues_beside_a_batching_stage_hold_two_of_its_batches():
    # A batch handed on whole, and the next one gathered, without waiting on a slow neighbour frame by frame.
    sink = SlowSink()
    pipeline = Pipeline(_frames(40), [Recorder(8)], sink, policy="offline", capacity=2)
    stats = pipeline.run()
    assert [queue.capacity for queue in pipeline.queues] == [16, 16]
    assert all(2 < peak <= 16 for peak in stats.queue_peaks.values()), stats.queue_peaks
    assert [f.index for f in sink.frames] == list(range(40))


def test_queues_away_from_batching_stages_keep_the_capacity_asked_for():
    pipeline = Pipeline(_frames(4), [Recorder(1), Recorder(5), Recorder(1), Recorder(1)], ListSink(), capacity=3)
    assert [queue.capacity for queue in pipeline.queues] == [3, 10, 10, 3, 3]
    live = Pipeline(_frames(4), [Recorder(5)], ListSink(), policy="live", capacity=2)
    assert [queue.capacity for queue in live.queues] == [2, 2]


class OneBehind(Recorder):
    """A stage that keeps its last batch in flight (as the overlapping device stage does) until `flush`."""

    def __init__(self, batch_size: int) -> None:
        super().__init__(batch_size)
        self.held: list[Frame] = []
        self.flushed = 0

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        self.calls.append(len(frames))
        done, self.held = self.held, frames
        return done

    def flush(self) -> list[Frame]:
        self.flushed += 1
        done, self.held = self.held, []
        return done


@pytest.mark.parametrize("batch, calls", [(3, [3, 3, 1]), (1, [1] * 7)])
def test_a_stage_that_keeps_frames_in_flight_gives_them_all_back_in_order(batch, calls):
    # Offline, even at batch 1, such a stage is fed through process_batch; the end of the stream flushes it.
    stage, sink = OneBehind(batch), ListSink()
    stats = Pipeline(_frames(7), [stage, Recorder(1)], sink, policy="offline", capacity=2).run()
    assert stage.calls == calls and stage.flushed == 1
    assert [f.index for f in sink.frames] == list(range(7))
    assert stats.per_stage["OneBehind"] == stats.processed == stats.written == 7


def test_live_pipelines_never_ask_a_stage_to_keep_frames_in_flight():
    stage, sink = OneBehind(3), ListSink()
    Pipeline(_frames(4), [stage], sink, policy="live", capacity=8).run()
    assert stage.calls == [0] * 4 and stage.flushed == 0 and len(sink.frames) == 4


def test_matting_stage_batches_give_the_alphas_of_one_by_one():
    batched, single = MattingStage(RedKey(), infer_size=64, batch_size=4), MattingStage(RedKey(), infer_size=64)
    many, one = _frames(5), _frames(5)
    assert batched.process_batch(many) == many
    for frame in one:
        single.process(frame)
    for a, b in zip(many, one):
        np.testing.assert_array_equal(a.alpha, b.alpha)


def test_p3mnet_batches_give_the_alphas_of_one_by_one(seed3_pth, one_thread):
    matter = P3MNetMatter(seed3_pth, device="cpu")
    images = [square_image(i, 96, 64) for i in range(3)]
    one_by_one = [matter(image) for image in images]
    for a, b in zip(matter.matte_batch(images), one_by_one):
        assert a.shape == (64, 96) and np.abs(a - b).max() <= 1e-5
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    tensor = matter.matte_tensor(x)
    assert tensor.shape == (3, 1, 64, 96) and np.abs(tensor[:, 0].numpy() - np.stack(one_by_one)).max() <= 1e-5


def test_cutout_with_a_batch_writes_the_same_matte(clip: Path, tmp_path: Path):
    mattes = {}
    for batch in (1, 4):
        result = cutout(clip, tmp_path / f"out{batch}.mp4", model="red-key-batch", infer_size=64, batch=batch,
                        alpha_out=str(tmp_path / f"matte{batch}.mkv"), quiet=True)
        assert result.frames == N
        mattes[batch] = [f.to_ndarray(format="gray") for f in decoded_video(tmp_path / f"matte{batch}.mkv")]
    assert len(mattes[1]) == N and all(np.array_equal(a, b) for a, b in zip(mattes[1], mattes[4]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_cutout_overlapping_batches_writes_what_one_batch_at_a_time_writes(seed3_pth, clip: Path, tmp_path: Path):
    # The CUDA job's device stage keeps a batch in flight: 30 frames in batches of 4 end with a short one,
    # which the end of the stream flushes. The same job without the overlap is the reference (same kernels).
    mattes = {}
    for overlap in (False, True):
        matte = tmp_path / f"matte_{overlap}.mkv"
        settings = load_config(model="p3mnet", weights=str(seed3_pth), device="cuda", infer_size=64, batch=4,
                               hw_codecs="off", alpha_out=str(matte))
        result = run_cutout(str(clip), str(tmp_path / f"out_{overlap}.mp4"), settings, quiet=True,
                            overlap_batches=overlap)
        assert result.frames == N
        mattes[overlap] = np.stack([f.to_ndarray(format="gray") for f in decoded_video(matte)])
    assert mattes[True].shape == (N, 48, 64)
    assert np.abs(mattes[True].astype(int) - mattes[False].astype(int)).max() <= 1     # lossless FFV1 mattes


def test_without_batch_the_job_takes_the_models_own(clip: Path, tmp_path: Path):
    CountingRedKey.batches.clear()
    assert cutout(clip, tmp_path / "out.mp4", model="red-key-counting", infer_size=64, quiet=True).frames == N
    assert sum(CountingRedKey.batches) == N and set(CountingRedKey.batches[:-1]) == {3}   # the last may be short


def test_the_cli_takes_batch_and_hw_codecs(clip: Path, tmp_path: Path):
    result = CliRunner().invoke(main, ["cutout", str(clip), "-o", str(tmp_path / "o.mp4"), "-m", "red-key-batch",
                                       "--infer-size", "64", "--batch", "3", "--hw-codecs", "off", "-q"])
    assert result.exit_code == 0, result.output
    assert f"{N} frames" in result.output


@pytest.mark.parametrize("value", [0, 65, 2.5])
def test_batch_is_checked(value):
    with pytest.raises(ConfigError, match="batch"):
        load_config(batch=value)
    with pytest.raises(ConfigError, match="hw_codecs"):
        load_config(hw_codecs="nvenc")
    with pytest.raises(P3MError, match="batch 0"):
        MattingStage(RedKey(), infer_size=64, batch_size=0)


def test_precision_is_a_checked_option_that_only_p3mnet_takes(clip: Path, tmp_path: Path):
    assert load_config().precision == "mixed" and load_config(precision="fp16").precision == "fp16"
    with pytest.raises(ConfigError, match="precision"):
        load_config(precision="int8")
    result = CliRunner().invoke(main, ["cutout", str(clip), "-o", str(tmp_path / "o.mp4"), "-m", "red-key-batch",
                                       "--precision", "fp16", "-q"])
    assert result.exit_code == 1 and "precision fp16 is a P3M-Net setting" in result.output
    assert not (tmp_path / "o.mp4").exists()
