"""``flask --app app openapi``: the ``command`` that writes the served OpenAPI document."""

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app.api.openapi import served_bytes


@click.command("openapi")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
    default="-",
    help="File to write (default: standard output).",
)
@with_appcontext
def command(output: Path) -> None:
    """Write the OpenAPI document exactly as GET /openapi.json serves it."""
    # Replaces flask-openapi3's command of this name, which printed its raw document: no
    # problem+json errors, no 401/403/500/503, so clients generated from it were wrong.
    with click.open_file(str(output), "wb") as out:
        out.write(served_bytes(current_app))
