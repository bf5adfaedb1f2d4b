"""`python -m stream.cli`: the `p3m` command."""
from stream.cli.main import main

main()
