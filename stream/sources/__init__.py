"""Where frames come from: files, URLs and image sequences; cameras; a synthetic camera."""
