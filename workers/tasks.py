"""RQ entry points. An RQ worker imports `run_job` by name (workers.queue.JOB_FUNCTION)."""

from __future__ import annotations

import threading

from app.config import Settings
from app.services import jobs
from app.services.context import Context, build_context

from .queue import RQDispatcher

BATCH = 16  # rows one RQ job runs: its own and up to BATCH - 1 taken off the queue
_context: Context | None = None
_lock = threading.Lock()


def run_job(job_id: int) -> str:
    """Run one outbox job, together with more rows taken off the queue when it is long
    (`RQDispatcher.take`); returns what happened to `job_id` ("done", "retry", "failed",
    "skipped"...)."""
    ctx = worker_context()
    taken = ctx.dispatcher.take(BATCH - 1) if isinstance(ctx.dispatcher, RQDispatcher) else []
    try:
        return jobs.run_many(ctx, [job_id, *taken])[0]
    except BaseException:
        ctx.dispatcher.dispatch(taken)  # e.g. the database is down: back on the queue
        raise


def run_jobs(job_ids: list[int]) -> list[str]:
    """Run a batch of outbox jobs handed out together (timers from the ticker)."""
    return jobs.run_many(worker_context(), job_ids)


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
