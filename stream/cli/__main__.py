"""`python -m stream.cli`: the `p3m` command."""
from stream.cli import run

run()
