"""`python -m advpriv`: the command line."""

from .cli import app

app(prog_name="advpriv")
