"""`serve`: migrate, then serve the web app with gunicorn (embedded mode also deploys the
bundled models and creates the demo users)."""

from __future__ import annotations

import os

import click

from app.config import Settings
from app.persistence import migrate
from app.services.context import build_context

from .context import _close, _logging, _settings
from .deploy import deploy_bundled
from .group import main
from .reference import REFERENCE_FILE, ensure_reference
from .users import DEMO_PASSWORD, DEMO_USERS, ensure_demo_users


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", type=int, default=None,
              help="gunicorn workers (default: 1 embedded, 2*cores+1 with Redis)")
def serve_command(host: str, port: int, workers: int | None) -> None:
    """Migrate, then serve the web app with gunicorn (embedded: deploy bpmn/ + demo users)."""
    from app.wsgi import GunicornServer, make_app

    settings = _settings()
    _logging()
    migrate.upgrade(settings.database_url)
    if settings.embedded:
        _bootstrap_embedded(settings)
    _print_banner(settings, host, port)
    options = _gunicorn_options(settings, host, port, workers)
    GunicornServer(lambda: make_app(settings), options).run()


def default_web_workers() -> int:
    """gunicorn sync workers with Redis: 2×cores+1, gunicorn's own advice."""
    return 2 * (os.cpu_count() or 1) + 1


def _gunicorn_options(settings: Settings, host: str, port: int, workers: int | None) -> dict:
    if settings.embedded:
        workers, threads = workers or 1, 8
    else:
        workers, threads = workers or default_web_workers(), 1
    return {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync", "timeout": 60,
            "accesslog": "-", "errorlog": "-", "preload_app": False}


def _bootstrap_embedded(settings: Settings) -> None:
    ctx = build_context(settings)
    try:
        deploy_bundled(ctx, settings.bpmn_dir)
        created = ensure_demo_users(ctx)
        if created:
            click.echo(f"created demo users: {', '.join(created)}")
        if ensure_reference(ctx, settings.bpmn_dir):
            click.echo(f"loaded reference data from {settings.bpmn_dir / REFERENCE_FILE}")
    finally:
        _close(ctx)


def _print_banner(settings: Settings, host: str, port: int) -> None:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"\nClientConnect Flow on http://{shown}:{port}/")
    if not settings.embedded:
        click.echo("jobs go to Redis: run `clientconnect worker` and `clientconnect ticker`")
        return
    click.echo(f"embedded mode (no REDIS_URL): database {settings.database_url}")
    click.echo(f"demo logins (password {DEMO_PASSWORD}):")
    for username, role, groups in DEMO_USERS:
        click.echo(f"  {username:<7} {role:<9} {', '.join(groups)}")
