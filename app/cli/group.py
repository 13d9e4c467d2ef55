"""The `clientconnect` command group; domain errors are reported as `error: message` plus
one line per entry (exit code 1)."""

from __future__ import annotations

import click

from app.domain.errors import DomainError


class _Cli(click.Group):
    """Reports domain errors as `error: message` plus one line per entry, exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DomainError as exc:
            click.echo(f"error: {exc.message}", err=True)
            for entry in exc.errors:
                click.echo(format_issue(entry), err=True)
            ctx.exit(1)


def format_issue(entry: dict) -> str:
    """`file:line: element_id: message` for model issues, `field: message` for the rest."""
    if entry.get("field"):
        return f"{entry['field']}: {entry.get('message', '')}"
    location = ""
    if entry.get("file"):
        location = str(entry["file"]) + (f":{entry['line']}" if entry.get("line") else "")
    parts = [p for p in (location, entry.get("element_id"), entry.get("message")) if p]
    return ": ".join(str(p) for p in parts)


@click.group(cls=_Cli)
def main() -> None:
    """ClientConnect Flow: BPMN process automation."""
