"""Reference data (products and typologies): `reference load`, and the bundled file loaded
when there are no products yet."""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.domain.access import SYSTEM
from app.services import reference as reference_service
from app.services.context import Context

from .context import _close, _migrated_context, _settings
from .group import main

REFERENCE_FILE = Path("support_case") / "reference.json"  # under the bpmn folder


@main.group("reference")
def reference_group() -> None:
    """Products and typologies."""


@reference_group.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def reference_load(file: str) -> None:
    """Create or update the products and typologies of a reference JSON file."""
    data = _read_json(Path(file))
    ctx = _migrated_context(_settings())
    try:
        counts = reference_service.load_reference(ctx, SYSTEM, data)
    finally:
        _close(ctx)
    click.echo(", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in counts.items()))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{path.name} is not valid JSON: {exc}") from None


def ensure_reference(ctx: Context, bpmn_dir: Path) -> bool:
    """Load the bundled reference data when there are no products yet; True if loaded."""
    path = bpmn_dir / REFERENCE_FILE
    if not path.is_file() or reference_service.has_products(ctx):
        return False
    reference_service.load_reference(ctx, SYSTEM, _read_json(path))
    return True
