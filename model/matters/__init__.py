"""One interface for matting models, `alpha = matter(rgb)`: the base class, the registry `make_matter` picks
from, the bundled MediaPipe segmenter and P3M-Net (loaded only when asked for: it imports torch)."""
from model.matters.base import Matter
from model.matters.registry import MatterFactory, default_weights_path, make_matter, matter_names, register_matter
from model.matters.selfie import MediaPipeMatter

__all__ = ["Matter", "MatterFactory", "MediaPipeMatter", "default_weights_path", "make_matter", "matter_names",
           "register_matter"]
