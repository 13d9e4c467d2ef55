"""The background processes: the RQ `worker` and the `ticker`."""

from __future__ import annotations

import signal
import threading

import click

from app.config import Settings
from app.services.context import Context

from .context import _close, _logging, _migrated_context, _require_schema, _settings
from .group import main


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
