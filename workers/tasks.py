"""RQ entry points. An RQ worker imports `run_job` by name (workers.queue.JOB_FUNCTION)."""

from __future__ import annotations

import threading

from app.config import Settings
from app.services import jobs
from app.services.context import Context, build_context

from .queue import RQDispatcher

_context: Context | None = None
_lock = threading.Lock()


def run_job(job_id: int) -> str:
    """Run one outbox job; returns what happened ("done", "retry", "failed", "skipped"...)."""
    return jobs.run(worker_context(), job_id)


def worker_context() -> Context:
    """The context of this worker process, built once from the environment."""
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                _context = _build()
    return _context


def _build() -> Context:
    settings = Settings.from_env()
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set: an RQ worker needs it to enqueue new jobs")
    return build_context(settings, RQDispatcher.from_settings(settings))


def reset_context() -> None:
    """Forget the cached context (tests, or after the environment changed)."""
    global _context
    with _lock:
        if _context is not None:
            _context.sessions.kw["bind"].dispose()
        _context = None
