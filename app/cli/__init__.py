"""Flask CLI commands, one module a group: ``flask --app app api-keys create|list|revoke``
(api_keys), ``users import|export|seed`` (users) and ``openapi`` (openapi); common holds what
they share. ``init_app`` registers them on the app."""

from flask import Flask

from app.cli import api_keys, audit, openapi, users


def init_app(app: Flask) -> None:
    """Register the CLI commands."""
    app.cli.add_command(api_keys.group)
    app.cli.add_command(audit.group)
    app.cli.add_command(users.group)
    app.cli.add_command(openapi.command)
