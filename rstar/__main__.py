"""``python -m rstar``: the same command line as ``rstar``."""

from rstar.cli import app

app(prog_name="rstar")
