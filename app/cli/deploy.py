"""Deploying models: `deploy` and `lint` of the files named on the command line, and the
bundled process folders deployed when the embedded server starts."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import click

from app.domain.access import SYSTEM
from app.domain.errors import DomainError
from app.services import deploy as deploy_service
from app.services.context import Context, build_context
from app.services.deploy import MODEL_SUFFIXES

from .context import _close, _migrated_context, _settings
from .group import format_issue, main


def collect_files(paths) -> dict[str, bytes]:
    """Files named on the command line, and the models under folders (names relative to it)."""
    files: dict[str, bytes] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = {f.relative_to(path).as_posix(): f for f in _models_under(path)}
        else:
            found = {path.name: path}
        for name, file in found.items():
            if name in files:
                raise click.ClickException(f"two files are named {name}")
            files[name] = file.read_bytes()
    if not files:
        raise click.ClickException("no .bpmn or .dmn files found")
    return files


def _models_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in MODEL_SUFFIXES)


def _print_deployed(results: list[dict]) -> None:
    for item in results:
        state = "created" if item["created"] else "unchanged"
        click.echo(f"{item['process_key']} v{item['version']} {state}")


@main.command("deploy")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def deploy_command(paths) -> None:
    """Deploy .bpmn/.dmn files (or every model under folders) as the system user."""
    files = collect_files(paths)
    ctx = _migrated_context(_settings())
    try:
        _print_deployed(deploy_service.deploy(ctx, SYSTEM, files))
    finally:
        _close(ctx)


@main.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def lint_command(paths) -> None:
    """Lint and compile models without storing anything."""
    files = collect_files(paths)
    ctx = build_context(_settings())
    try:
        deploy_service.check(ctx, files)
    finally:
        _close(ctx)
    click.echo("ok")


def process_folders(bpmn_dir: Path) -> dict[Path, dict[str, bytes]]:
    """The models under `bpmn_dir`, grouped by folder; names relative to `bpmn_dir`."""
    groups: dict[Path, dict[str, bytes]] = defaultdict(dict)
    if bpmn_dir.is_dir():
        for file in _models_under(bpmn_dir):
            groups[file.parent][file.relative_to(bpmn_dir).as_posix()] = file.read_bytes()
    return {folder: files for folder, files in groups.items() if any(
        name.endswith(".bpmn") for name in files)}


def deploy_bundled(ctx: Context, bpmn_dir: Path) -> list[dict]:
    """Deploy each process folder; a folder that calls another is retried after the rest."""
    pending, deployed = process_folders(bpmn_dir), []
    while pending:
        failed = {}
        for folder, files in pending.items():
            try:
                deployed.extend(deploy_service.deploy(ctx, SYSTEM, files))
            except DomainError as exc:
                failed[folder] = exc
        if len(failed) == len(pending):
            _report_failed(bpmn_dir, failed)
            break
        pending = {folder: pending[folder] for folder in failed}
    _print_deployed(deployed)
    return deployed


def _report_failed(bpmn_dir: Path, failed: dict[Path, DomainError]) -> None:
    for folder, exc in failed.items():
        click.echo(f"warning: {folder.relative_to(bpmn_dir)} not deployed: {exc.message}",
                   err=True)
        for entry in exc.errors:
            click.echo(f"  {format_issue(entry)}", err=True)
