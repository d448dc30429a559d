"""Command line: `advpriv protect`, `advpriv demo`, `advpriv obfuscator ...`. A thin layer over the Python API."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Adversarial privacy for images.")
from advpriv.obfuscate.cli import app as obfuscator_app; app.add_typer(obfuscator_app, name="obfuscator")
