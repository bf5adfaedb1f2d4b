"""Pictures side by side for a person to look at: tiles in a row under a one-line label, rows stacked into one
PNG (the evaluation's contact sheet, `p3m preview`)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from model.errors import P3MError

LABEL_HEIGHT = 22


def labelled_row(tiles: Sequence[np.ndarray], label: str, height: int) -> np.ndarray:
    """H×W×3 uint8 RGB `tiles` (of one shape) scaled to `height`, side by side, under `label`."""
    width = round(tiles[0].shape[1] * height / tiles[0].shape[0])
    row = np.concatenate([cv2.resize(t, (width, height), interpolation=cv2.INTER_AREA) for t in tiles], axis=1)
    top = np.full((LABEL_HEIGHT, row.shape[1], 3), 255, np.uint8)
    cv2.putText(top, label, (6, LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([top, row], axis=0)


def write_sheet(rows: Sequence[np.ndarray], out: str | Path, what: str = "a contact sheet") -> None:
    """`rows` one under another (narrower ones padded with white) as the PNG `out`, written whole or not at all."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise P3MError(f"{what} is a PNG, not {out.name}", f"name it e.g. {out.stem or 'sheet'}.png")
    width = max(row.shape[1] for row in rows)
    sheet = np.concatenate([np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=255)
                            for row in rows], axis=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.partial.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise P3MError(f"cannot write {out}", "is the folder writable?")
    tmp.replace(out)                 # never a half-written sheet under the final name
