"""What `--model auto` runs, and why: given weights, else the best installed P3M-Net (ViTAE-S, then R34, then
Swin-T), else weights at the old location, else the bundled MediaPipe model, with a hint to download P3M-Net.
Torch-free."""
from __future__ import annotations

import logging
from pathlib import Path

from model.zoo import store
from model.zoo.catalog import AUTO_ORDER

log = logging.getLogger(__name__)

DOWNLOAD_HINT = "for the best quality, run: p3m models download p3mnet-vitae-s"
_hinted = False          # the hint is given once a process, not for every job a batch or a live restart makes


def choose(weights: Path | None) -> tuple[str, Path | None]:
    """(registered matter name, weights) for `--model auto`; the choice and its reason are logged."""
    if weights is not None:
        log.debug("--model auto: P3M-Net, since --weights was given")   # the user chose; nothing to explain
        return "p3mnet", weights
    have = store.installed()
    for name in AUTO_ORDER:
        if name in have:
            path = store.models_dir() / have[name].file
            others = [n for n in AUTO_ORDER if n in have and n != name]
            why = f"the best P3M-Net installed (before {', '.join(others)})" if others else "the P3M-Net installed"
            log.info("--model auto: %s, %s: %s", name, why, path)
            return "p3mnet", path                  # the P3M-Net matter builds the variant the file holds
    legacy = store.legacy_weights_path()
    try:
        found = legacy.is_file()
    except OSError as e:            # an unreadable ~/.config: say so, and go on without what it may hold
        log.warning("--model auto: cannot look for weights at %s (%s); using the bundled model",
                    legacy, e.strerror or e)
        found = False
    if found:
        log.info("--model auto: P3M-Net, from weights at the old location %s (none installed)", legacy)
        return "p3mnet", legacy
    _hint_once()
    return "mediapipe", None


def installed_weights(name: str) -> Path | None:
    """The installed weights of P3M-Net variant `name` (e.g. p3mnet-vitae-s) for `--model NAME` without --weights."""
    return store.installed_path(name) if name in AUTO_ORDER else None


def _hint_once() -> None:
    global _hinted
    if not _hinted:
        _hinted = True
        log.info("--model auto: the bundled MediaPipe segmenter, since no P3M-Net is installed (in %s); %s",
                 store.models_dir(), DOWNLOAD_HINT)
