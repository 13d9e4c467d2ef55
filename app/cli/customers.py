"""Customers of the support flow: `customers import` of a CSV file."""

from __future__ import annotations

import click

from app.domain.access import SYSTEM
from app.services import customers as customer_service

from .context import _close, _migrated_context, _settings
from .group import main


@main.group("customers")
def customers_group() -> None:
    """Customers of the support flow."""


@customers_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def customers_import(file: str) -> None:
    """Create or update customers from a CSV file (header: id,name,segment,value_rank,
    sensitivity,n1_agent,account_manager,email). Bad rows are listed and skipped; exit 1."""
    ctx = _migrated_context(_settings())
    try:
        with open(file, "rb") as stream:
            result = customer_service.import_csv(ctx, SYSTEM, stream)
    finally:
        _close(ctx)
    click.echo(f"created: {result['created']}, updated: {result['updated']}")
    for entry in result["errors"]:
        click.echo(f"line {entry['line']}: {entry['field']}: {entry['message']}", err=True)
    if result["errors"]:
        raise click.exceptions.Exit(1)
