"""``flask --app app audit seal|verify|prune``: the audit log's hash chain."""

import sys
from datetime import timedelta

import click
from flask.cli import AppGroup

from app.cli.common import counted, needs_schema
from app.config import current_settings
from app.services import audit

group = AppGroup("audit", help="Seal, verify and prune the audit log's hash chain.")


@group.command("seal")
@needs_schema
def seal_command() -> None:
    """Link every committed, unsealed event into the chain (run it often: cron, the worker)."""
    click.echo(f"Sealed {counted(audit.seal(), 'event')}.")


@group.command("verify")
@needs_schema
def verify_command() -> None:
    """Walk the chain from its anchor; name the first event altered or missing (exit 1)."""
    verdict = audit.verify()
    anchor = f" from the anchor at #{verdict.anchor_seq}" if verdict.anchor_seq else ""
    unsealed = f"; {counted(verdict.unsealed, 'event')} not sealed yet" if verdict.unsealed else ""
    if verdict.problem is not None:
        click.echo(
            f"The chain is broken: {verdict.problem} "
            f"({counted(verdict.checked, 'event')} verified before it{anchor}).",
            err=True,
        )
        sys.exit(1)
    click.echo(f"The chain holds: {counted(verdict.checked, 'event')} verified{anchor}{unsealed}.")


@group.command("prune")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=1),
    help="Delete events older than this; default AUDIT_RETENTION_DAYS.",
)
@needs_schema
def prune_command(older_than_days: int | None) -> None:
    """Delete old events from the chain's start, keeping the rest verifiable from an anchor."""
    days = older_than_days or current_settings().AUDIT_RETENTION_DAYS
    if days is None:
        raise click.UsageError("Give --older-than-days, or set AUDIT_RETENTION_DAYS.")
    gone, anchor = audit.prune(timedelta(days=days))
    click.echo(f"Deleted {counted(gone, 'event')}; the chain is anchored at #{anchor}.")
