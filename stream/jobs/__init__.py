"""The jobs a user runs: offline cut-out, live, the demo; their typed configuration and one assembly."""
