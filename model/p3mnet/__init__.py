"""P3M-Net R34 as the paper draws it (SPEC §1-4): encoder, integration modules, decoders, the network,
its official checkpoints and the image inference strategies."""
