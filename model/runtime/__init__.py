"""Running P3M-Net fast: precision names, devices, BatchNorm folding and CUDA graphs."""
