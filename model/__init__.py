"""P3M-Net: the network, its checkpoints and image inference.

The names below load on first use (PEP 562), so `import model.errors` (the CLI's first import) does not
pull in torch: `p3m --help` answers in ~0.3 s instead of ~2 s.
"""
from __future__ import annotations

import importlib
from typing import Any

_HOMES = {"P3MNet": "p3mnet.network", "P3MOutput": "p3mnet.network", "load_p3mnet": "p3mnet.checkpoint",
          "infer_image": "p3mnet.inference", "CheckpointError": "p3mnet.checkpoint"}
__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
