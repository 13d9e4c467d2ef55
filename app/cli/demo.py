"""`demo-data`: a realistic support dataset generated through the real API."""

from __future__ import annotations

import click

from app.persistence import migrate

from .context import _settings
from .group import main


@main.command("demo-data")
@click.option("--months", default=3, show_default=True, type=click.IntRange(1, 24))
@click.option("--per-month", default=816, show_default=True, type=click.IntRange(1, 50000),
              help="cases registered per simulated month")
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--until", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="end of the simulated window, UTC, not in the future (default: now)")
def demo_data_command(months: int, per_month: int, seed: int, until) -> None:
    """Generate a realistic support dataset over the past MONTHS by driving the real API.

    Migrates the database, deploys bpmn/support_case and loads its reference data when
    missing, creates the demo team (password demo1234) and ~300 customers, then simulates
    the cases; running it again adds another dataset."""
    from datetime import UTC, datetime

    from app import demo_data

    settings = _settings()
    end = until.replace(tzinfo=UTC) if until else None
    if end and end > datetime.now(UTC):
        raise click.BadParameter("must not be in the future", param_hint="--until")
    migrate.upgrade(settings.database_url)
    try:
        summary = demo_data.generate(settings, months, per_month, seed, end, click.echo)
    except demo_data.DemoError as exc:
        raise click.ClickException(str(exc)) from None
    demo_data.report(summary, click.echo)
