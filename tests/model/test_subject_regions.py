"""Subject selection on a still: the person is kept, a region not connected to it is dropped."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers.subject_media import person_and_blob

from model.errors import P3MError
from model.subjects import find_regions, select_subjects


def test_main_keeps_the_person_and_drops_a_separate_blob():
    alpha, person, blob = person_and_blob()
    assert find_regions(alpha).count == 2
    out = select_subjects(alpha, "main")
    np.testing.assert_array_equal(out[person], alpha[person])          # the person untouched
    assert out[blob].max() == 0.0                                      # the blob gone, soft edge included
    near = cv2.dilate(person.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    assert out[~near].max() == 0.0                                     # nothing but the person and its soft edge


def test_all_keeps_every_region_and_a_lone_subject_is_untouched():
    alpha, _, blob = person_and_blob()
    np.testing.assert_array_equal(select_subjects(alpha, "all"), alpha)
    alone, _, _ = person_and_blob(blob_at=None)
    np.testing.assert_array_equal(select_subjects(alone, "main"), alone)
    assert select_subjects(np.zeros((8, 8), np.float32)).max() == 0.0


def test_an_unknown_mode_is_named():
    with pytest.raises(P3MError, match="unknown subjects mode 'largest'"):
        select_subjects(np.zeros((8, 8), np.float32), "largest")
