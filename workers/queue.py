"""Dispatchers: how job ids travel to the code that runs them."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from redis import Redis
from rq import Queue

log = logging.getLogger(__name__)

JOB_FUNCTION = "workers.tasks.run_job"


class RQDispatcher:
    """Puts job row ids on an RQ queue; the database keeps everything else."""

    def __init__(self, redis_url: str, queue_name: str):
        self.queue = Queue(queue_name, connection=Redis.from_url(redis_url))

    def dispatch(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            try:
                self.queue.enqueue(JOB_FUNCTION, job_id, result_ttl=0, failure_ttl=3600)
            except Exception:  # Redis down: the ticker re-dispatches when the lease runs out
                log.exception("could not enqueue job %s", job_id)


class InlineDispatcher:
    """The embedded default: jobs run on a small thread pool inside the web process."""

    def __init__(self, run, workers: int = 2):
        self._run = run
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ccf-job")

    def dispatch(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            self._pool.submit(self._safe_run, job_id)

    def _safe_run(self, job_id: int) -> None:
        try:
            self._run(job_id)
        except Exception:
            log.exception("job %s failed unexpectedly", job_id)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class SyncDispatcher:
    """Runs each job right away in the caller's thread, after the caller's commit (the
    demo-data generator: emails, thrown messages and their follow-ups happen at the
    simulated time of the action that caused them)."""

    def __init__(self, run):
        self._run = run

    def dispatch(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            try:
                self._run(job_id)
            except Exception:
                log.exception("job %s failed unexpectedly", job_id)
