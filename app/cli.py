"""The `clientconnect` command: serve, worker, ticker, deploy, lint, users, tokens, db."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections import defaultdict
from pathlib import Path

import click

from app.config import ConfigError, Settings
from app.domain.access import SYSTEM
from app.domain.errors import DomainError
from app.persistence import migrate
from app.services import customers as customer_service
from app.services import deploy as deploy_service
from app.services import reference as reference_service
from app.services import users as user_service
from app.services.context import Context, build_context
from app.services.deploy import MODEL_SUFFIXES

REFERENCE_FILE = Path("support_case") / "reference.json"  # under the bpmn folder
DEMO_PASSWORD = "demo1234"
DEMO_USERS = (
    ("ana", "agent", ("posventa", "sales")),
    ("bruno", "agent", ("managers",)),
    ("olga", "operator", ()),
    ("diego", "designer", ()),
    ("admin", "admin", ()),
)


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


# --- helpers -----------------------------------------------------------------
def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _require_schema(settings: Settings) -> None:
    if migrate.current(settings.database_url) != migrate.head():
        raise click.ClickException(
            "the database is not at the latest schema: run `clientconnect db upgrade`")


def _migrated_context(settings: Settings, dispatcher=None) -> Context:
    """A context on a database that is at the latest migration (or a clear error)."""
    _require_schema(settings)
    return build_context(settings, dispatcher)


def _close(ctx: Context) -> None:
    ctx.sessions.kw["bind"].dispose()


def _logging() -> None:
    level = _settings().log_level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":  # SpiffWorkflow logs every task state change at INFO
        logging.getLogger("spiff").setLevel(logging.WARNING)


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


# --- deploy / lint -------------------------------------------------------------
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


# --- users / tokens / db ------------------------------------------------------
@main.group("users")
def users_group() -> None:
    """Manage users."""


@users_group.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--role", required=True, help="agent, operator, designer or admin")
@click.option("--groups", default="", help="comma-separated group names")
@click.option("--email", default=None, help="where SLA warnings and escalations are sent")
def users_create(username: str, password: str, role: str, groups: str, email: str | None) -> None:
    ctx = _migrated_context(_settings())
    try:
        user = user_service.create_user(ctx, username, password, role, groups.split(","), email)
    finally:
        _close(ctx)
    click.echo(f"created {user['role']} {user['username']} "
               f"groups={','.join(user['groups']) or '-'}")


@main.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("create")
@click.argument("username")
def tokens_create(username: str) -> None:
    """Print a new API token for USERNAME (shown once: only its hash is stored)."""
    ctx = _migrated_context(_settings())
    try:
        click.echo(user_service.create_token(ctx, username))
    finally:
        _close(ctx)


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (creates the SQLite folder if needed)."""
    url = _settings().database_url
    migrate.upgrade(url)
    click.echo(f"database at revision {migrate.current(url)}")


@db_group.command("current")
def db_current() -> None:
    click.echo(migrate.current(_settings().database_url) or "empty")


# --- customers / reference data -------------------------------------------------
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


# --- demo data ----------------------------------------------------------------
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


# --- worker / ticker ----------------------------------------------------------
@main.command("worker")
@click.option("--burst", is_flag=True, help="stop when the queue is empty")
def worker_command(burst: bool) -> None:
    """An RQ worker running service calls (needs REDIS_URL).

    It runs jobs in its own process (no fork per job), so the parsed specs stay cached;
    run several workers for parallelism and isolation."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException(
            "REDIS_URL is not set: without Redis, jobs run inside `clientconnect serve`")
    _logging()
    redis = Redis.from_url(settings.redis_url)
    SimpleWorker([Queue(settings.queue_name, connection=redis)], connection=redis).work(burst=burst)


@main.command("ticker")
@click.option("--once", is_flag=True, help="one pass, then exit")
def ticker_command(once: bool) -> None:
    """Fire due timers and re-dispatch lost service calls, every few tenths of a second."""
    from workers.ticker import Ticker

    settings = _settings()
    _logging()
    ctx = _ticker_context(settings)
    ticker = Ticker(ctx, ctx.dispatcher, settings.ticker_interval_seconds)
    try:
        if once:
            counts = ticker.tick()
            click.echo(f"timers fired: {counts['timers']}, dispatched: {counts['dispatched']}")
        else:
            ticker.run_forever(_stop_on_signals())
    finally:
        if hasattr(ctx.dispatcher, "shutdown"):
            ctx.dispatcher.shutdown()
        _close(ctx)


def _ticker_context(settings: Settings) -> Context:
    if settings.embedded:
        from app.wsgi import embedded_context

        _require_schema(settings)
        return embedded_context(settings)
    from workers.queue import RQDispatcher

    return _migrated_context(settings, RQDispatcher.from_settings(settings))


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


# --- serve --------------------------------------------------------------------
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


def _gunicorn_options(settings: Settings, host: str, port: int, workers: int | None) -> dict:
    if settings.embedded:
        workers, threads = workers or 1, 8
    else:
        workers, threads = workers or 2 * (os.cpu_count() or 1) + 1, 1
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


def ensure_demo_users(ctx: Context) -> list[str]:
    """Create the demo users that do not exist yet; returns the created names."""
    from sqlalchemy import select

    from app.persistence.models import User

    with ctx.unit() as session:
        existing = set(session.scalars(select(User.username)))
    created = []
    for username, role, groups in DEMO_USERS:
        if username not in existing:
            user_service.create_user(ctx, username, DEMO_PASSWORD, role, list(groups))
            created.append(username)
    return created


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


if __name__ == "__main__":
    main()
