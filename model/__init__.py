"""P3M-Net: the network, its checkpoints and image inference."""
from .checkpoint import CheckpointError, load_p3mnet
from .inference import infer_image
from .p3mnet import P3MNet, P3MOutput

__all__ = ["P3MNet", "P3MOutput", "load_p3mnet", "infer_image", "CheckpointError"]
