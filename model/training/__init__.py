"""Training P3M-Net under the privacy-preserving setting: config, data, losses, the trainer, face obfuscation."""
