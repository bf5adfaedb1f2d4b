"""Generated mattes for subject selection: a person and, apart from it, a blob; and clips with known flicker."""
from __future__ import annotations

import cv2
import numpy as np


def person_and_blob(height: int = 180, width: int = 320, blob_at: tuple[int, int] | None = (40, 270)) -> tuple:
    """A soft alpha with a person (head and shoulders up from the bottom edge) and, apart from it, a round blob
    as confident as the person; returns (alpha, person mask, blob mask)."""
    person = np.zeros((height, width), np.uint8)
    cv2.ellipse(person, (140, 70), (28, 36), 0, 0, 360, 1, -1)                   # head
    cv2.ellipse(person, (140, height), (80, 75), 0, 180, 360, 1, -1)              # shoulders
    cv2.rectangle(person, (128, 95), (152, 115), 1, -1)                           # neck
    blob = np.zeros_like(person)
    if blob_at is not None:
        cv2.circle(blob, blob_at[::-1], 22, 1, -1)
    alpha = cv2.GaussianBlur(np.maximum(person, blob).astype(np.float32), (7, 7), 2.0)
    return np.clip(alpha, 0, 1), person.astype(bool), blob.astype(bool)
