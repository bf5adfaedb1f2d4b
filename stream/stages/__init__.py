"""What happens to a frame: matting, smoothing, upsampling, compositing over a background, face blurring;
on CUDA the first three (and compositing) as one device stage."""
