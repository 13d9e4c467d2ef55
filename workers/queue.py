"""Dispatchers: how job ids travel to the code that runs them."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus as RQStatus

log = logging.getLogger(__name__)

JOB_FUNCTION = "workers.tasks.run_job"
DEFAULT_JOB_TIMEOUT = 300  # Settings.job_timeout_seconds: the lease of a claimed job
_ON_ITS_WAY = frozenset({RQStatus.CREATED, RQStatus.QUEUED, RQStatus.DEFERRED,
                         RQStatus.SCHEDULED})


def rq_job_id(job_id: int) -> str:
    """The RQ id of a job row: one RQ job per row at a time (a repeat dispatch is a no-op)."""
    return f"ccf-{job_id}"


class RQDispatcher:
    """Puts job row ids on an RQ queue; the database keeps everything else.

    Each row is enqueued under its own RQ id (`rq_job_id`) with `unique=True`, so dispatching
    a row that is already queued (a resume, a ticker pass) adds nothing. A finished RQ job
    leaves nothing behind (result_ttl=0); a failed, stopped or abandoned one (started longer
    ago than its timeout) is replaced, so a row can always be dispatched again. RQ's job
    timeout is the job lease: RQ never stops a job its lease still covers."""

    def __init__(self, redis_url: str, queue_name: str,
                 job_timeout: int = DEFAULT_JOB_TIMEOUT):
        self.queue = Queue(queue_name, connection=Redis.from_url(redis_url))
        self.job_timeout = job_timeout

    @classmethod
    def from_settings(cls, settings) -> RQDispatcher:
        return cls(settings.redis_url, settings.queue_name, settings.job_timeout_seconds)

    def dispatch(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            try:
                self._enqueue(job_id)
            except Exception:  # Redis down: the ticker re-dispatches when the lease runs out
                log.exception("could not enqueue job %s", job_id)

    def _enqueue(self, job_id: int) -> None:
        rq_id = rq_job_id(job_id)
        for _ in range(3):
            try:
                self.queue.enqueue(JOB_FUNCTION, job_id, job_id=rq_id, unique=True,
                                   job_timeout=self.job_timeout, result_ttl=0,
                                   failure_ttl=3600)
                return
            except DuplicateJobError:
                if not self._drop_if_done(rq_id):
                    return  # queued or running now: it will run
        log.warning("job %s: its RQ job %s kept coming back; not enqueued again", job_id, rq_id)

    def _drop_if_done(self, rq_id: str) -> bool:
        """Delete the RQ job of that id unless it is still to run or running; True if gone."""
        try:
            existing = RQJob.fetch(rq_id, connection=self.queue.connection)
        except NoSuchJobError:
            return True
        status = existing.get_status()
        if status in _ON_ITS_WAY or (status == RQStatus.STARTED and not self._abandoned(existing)):
            return False
        existing.delete()
        return True

    def _abandoned(self, existing: RQJob) -> bool:
        """A started job whose worker died: started longer ago than its timeout."""
        timeout = existing.timeout or self.job_timeout
        started = existing.started_at
        return started is None or datetime.now(UTC) - started > timedelta(seconds=timeout + 5)


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
