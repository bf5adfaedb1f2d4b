"""Subject selection over frames: a blinking blob never reaches the output, the subject never vanishes for a
frame, a region that persists appears (subjects all), and a cut starts afresh."""
from __future__ import annotations

import contextlib

import numpy as np
from helpers.subject_media import person_and_blob

from stream.jobs.assembly import Assembly
from stream.jobs.config import CutoutConfig
from stream.stages.subjects import SubjectSelection

IMAGE = np.full((180, 320, 3), 90, np.uint8)     # a still scene: no cut


def test_a_blinking_blob_does_not_reach_the_output():
    with_blob, person, blob = person_and_blob()
    without, _, _ = person_and_blob(blob_at=None)
    for mode in ("main", "all"):
        selection = SubjectSelection(mode)
        for i in range(12):                          # the blob on every other frame
            out = selection.select(with_blob if i % 2 else without, IMAGE)
            assert out[blob].max() == 0.0, (mode, i)
            np.testing.assert_array_equal(out[person], with_blob[person])


def test_a_region_that_persists_appears_with_subjects_all_only():
    with_blob, person, blob = person_and_blob()
    without, _, _ = person_and_blob(blob_at=None)
    shown = {}
    for mode in ("main", "all"):
        selection = SubjectSelection(mode, persist=3)
        outs = [selection.select(frame, IMAGE) for frame in [without] + [with_blob] * 4]
        shown[mode] = [bool(out[blob].max() > 0) for out in outs]
    assert shown["all"] == [False, False, False, True, True]     # from its third frame in a row
    assert shown["main"] == [False] * 5


def test_the_subject_does_not_vanish_for_a_frame_and_a_gone_subject_goes():
    alpha, person, _ = person_and_blob(blob_at=None)
    empty = np.zeros_like(alpha)
    selection = SubjectSelection("main", hold=3)
    outs = [selection.select(frame, IMAGE) for frame in [alpha, alpha, empty, alpha] + [empty] * 5]
    assert all(out[person].min() > 0.3 for out in outs[:7])     # a one-frame drop and the first 3 of 5 held
    assert outs[-1].max() == 0.0                                 # then the subject is really gone


def test_a_cut_starts_afresh():
    alpha, person, blob = person_and_blob()
    selection = SubjectSelection("all")
    selection.select(person_and_blob(blob_at=None)[0], IMAGE)
    assert selection.select(alpha, IMAGE)[blob].max() == 0.0          # new here: not yet
    out = selection.select(alpha, 255 - IMAGE)                         # another shot: a first frame again
    np.testing.assert_array_equal(out, alpha)


def test_the_bundled_model_gets_subject_selection_by_default_and_any_model_as_asked():
    def modes(**settings) -> list[str]:
        with contextlib.ExitStack() as stack:
            assembly = Assembly(stack, CutoutConfig(**settings))
            assembly.load()
            return [stage.mode for stage in assembly.stages() if isinstance(stage, SubjectSelection)]

    assert modes(model="mediapipe") == ["main"]
    assert modes(model="mediapipe", subjects="all") == ["all"]
    assert modes(model="mediapipe", subjects="off") == []


def test_a_preset_may_write_subjects_off_bare(tmp_path):
    """YAML reads a bare `off` as false: a preset saying `subjects: off` means off, not a type error."""
    preset = tmp_path / "p.yaml"
    preset.write_text("subjects: off\n")
    assert CutoutConfig.load(preset).subjects == "off"
