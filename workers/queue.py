"""Dispatchers: how job ids travel to the code that runs them."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq import Queue, Worker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus as RQStatus

log = logging.getLogger(__name__)

JOB_FUNCTION = "workers.tasks.run_job"
BATCH_FUNCTION = "workers.tasks.run_jobs"
DEFAULT_JOB_TIMEOUT = 300  # Settings.job_timeout_seconds: the lease of a claimed job
_ON_ITS_WAY = frozenset({RQStatus.CREATED, RQStatus.QUEUED, RQStatus.DEFERRED,
                         RQStatus.SCHEDULED})


def rq_job_id(job_id: int) -> str:
    """The RQ id of a job row: one RQ job per row at a time (a repeat dispatch is a no-op)."""
    return f"{_PREFIX}{job_id}"


# Takes up to ARGV[1] row ids (RQ ids matching the Lua pattern ARGV[2]) off the front of the
# queue (KEYS[1]), at most half of what is queued (the other workers get their share), and
# deletes each one's RQ job hash (prefix ARGV[3]) in the same atomic step: no worker will
# start them, and a later dispatch of the same row enqueues it again.
_TAKE = """
local want = math.min(tonumber(ARGV[1]), math.ceil(redis.call('LLEN', KEYS[1]) / 2))
local taken = {}
if want < 1 then return taken end
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, 2 * want - 1)) do
  if #taken >= want then break end
  if string.match(id, ARGV[2]) then
    redis.call('LREM', KEYS[1], 1, id)
    redis.call('DEL', ARGV[3] .. id)
    taken[#taken + 1] = id
  end
end
return taken
"""
_PREFIX = "ccf-"
_TAKE_PATTERN = "^ccf%-%d+$"  # rq_job_id ids, as a Lua pattern


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
        self._take = None

    @classmethod
    def from_settings(cls, settings) -> RQDispatcher:
        return cls(settings.redis_url, settings.queue_name, settings.job_timeout_seconds)

    def dispatch(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            try:
                self._enqueue(job_id)
            except Exception:  # Redis down: the ticker re-dispatches when the lease runs out
                log.exception("could not enqueue job %s", job_id)

    def timer_batches_wanted(self) -> int:
        """Timer batches the workers could take now: two per worker listening on the queue,
        less the jobs already queued."""
        workers = Worker.count(queue=self.queue)
        return max(0, 2 * workers - self.queue.count) if workers else 0

    def dispatch_batches(self, job_ids: list[int], size: int) -> None:
        """Queue rows in batches of `size`, one RQ job each (`BATCH_FUNCTION`), ahead of the
        queued jobs (timers are due now), oldest first. A lost batch is not lost: its rows
        are pending in the database and due again when their lease runs out."""
        chunks = [job_ids[i:i + size] for i in range(0, len(job_ids), size)]
        for chunk in reversed(chunks):
            try:
                self.queue.enqueue(BATCH_FUNCTION, chunk, at_front=True, result_ttl=0,
                                   failure_ttl=3600, job_timeout=self.job_timeout)
            except Exception:  # Redis down: the rows are due again after their lease
                log.exception("could not enqueue a batch of %d jobs", len(chunk))

    def take(self, n: int) -> list[int]:
        """Up to `n` more job rows queued for the workers (at most half of the queue), taken
        off it so that the calling worker runs them with its current job: one RQ job's
        bookkeeping, one claim and one engine transaction for all. A row taken and then not
        run is not lost: it is still pending or running in the database, and the ticker
        dispatches it again when its lease runs out."""
        if n < 1:
            return []
        if self._take is None:
            self._take = self.queue.connection.register_script(_TAKE)
        ids = self._take(keys=[self.queue.key],
                         args=[n, _TAKE_PATTERN, RQJob.redis_job_namespace_prefix])
        return [int(rq_id[len(_PREFIX):]) for rq_id in map(_text, ids)]

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


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
