"""WSGI entry point: `gunicorn 'app.wsgi:app'` (or `app.wsgi:make_app()`).

Without REDIS_URL (the embedded default) jobs run on a thread pool inside the process and a
ticker thread fires timers; with REDIS_URL jobs go to RQ and `clientconnect ticker` runs apart.
The app is built on first access of `app`, so importing this module has no side effects.
Run `clientconnect db upgrade` before starting gunicorn yourself.
"""

from __future__ import annotations

from flask import Flask
from gunicorn.app.base import BaseApplication

from app import create_app
from app.config import Settings
from app.services import jobs
from app.services.context import Context, build_context
from workers.queue import InlineDispatcher, RQDispatcher
from workers.ticker import Ticker

TICKER_KEY = "clientconnect.ticker"
_app: Flask | None = None


def make_app(settings: Settings | None = None, start_ticker: bool = True) -> Flask:
    """The Flask app wired for the embedded mode or for RQ, from `settings` or the env."""
    settings = settings or Settings.from_env()
    if not settings.embedded:
        dispatcher = RQDispatcher.from_settings(settings)
        return create_app(settings, context=build_context(settings, dispatcher))
    ctx = embedded_context(settings)
    app = create_app(settings, context=ctx)
    ticker = Ticker(ctx, ctx.dispatcher, settings.ticker_interval_seconds)
    app.extensions[TICKER_KEY] = ticker
    if start_ticker:
        ticker.start_thread()
    return app


def embedded_context(settings: Settings, workers: int = 4) -> Context:
    """A context whose jobs run in-process on a small thread pool."""
    ctx = build_context(settings)
    ctx.dispatcher = InlineDispatcher(lambda job_id: jobs.run(ctx, job_id), workers=workers)
    return ctx


def shutdown(app: Flask) -> None:
    """Stop the ticker thread and let running in-process jobs finish."""
    ticker = app.extensions.get(TICKER_KEY)
    if ticker is not None:
        ticker.stop()
    ctx = app.extensions.get("clientconnect")
    if ctx is not None and hasattr(ctx.dispatcher, "shutdown"):
        ctx.dispatcher.shutdown()


class GunicornServer(BaseApplication):
    """Runs a Flask app factory under gunicorn; the app is built in each worker (after fork)."""

    def __init__(self, factory, options: dict):
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key.lower(), value)
        self.cfg.set("worker_exit", _worker_exit)

    def load(self) -> Flask:
        return self.factory()


def _worker_exit(_server, worker) -> None:
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        shutdown(app)


def __getattr__(name: str):
    if name in ("app", "application"):
        global _app
        if _app is None:
            _app = make_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
