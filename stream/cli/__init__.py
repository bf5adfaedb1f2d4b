"""The `p3m` command."""
from stream.cli.main import main

__all__ = ["main"]
