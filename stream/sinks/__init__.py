"""Where frames go: encoded files with the input's audio, PNG sequences, the virtual camera, a preview
window and network streams."""
