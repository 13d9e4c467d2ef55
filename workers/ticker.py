"""The ticker: fires due timers and (re-)dispatches the jobs the workers run: service calls
due for a retry or whose lease ran out (a lost dispatch, a dead worker), thrown messages and
notifications. Several tickers may run: each job is claimed by exactly one of them.

Run it as its own process (`clientconnect ticker`) or, in the embedded mode, as a daemon
thread inside the web server (`Ticker.start_thread()`).
"""

from __future__ import annotations

import logging
import threading

from app.services import jobs

log = logging.getLogger(__name__)


class Ticker:
    def __init__(self, ctx, dispatcher, interval: float = 0.5):
        self.ctx = ctx
        self.dispatcher = dispatcher
        self.interval = interval
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> dict:
        """One pass: fire due timers, then dispatch due or orphaned jobs."""
        fired = self._fire_timers()
        dispatched = jobs.redispatch(self.ctx)
        if dispatched:
            self.dispatcher.dispatch(dispatched)
        return {"timers": fired, "dispatched": len(dispatched)}

    def _fire_timers(self) -> int:
        fired = 0
        for job_id in jobs.due_timer_ids(self.ctx):
            try:
                if jobs.run(self.ctx, job_id) == "done":
                    fired += 1
            except Exception:
                log.exception("timer job %s failed", job_id)
        return fired

    def run_forever(self, stop_event: threading.Event | None = None) -> None:
        """Tick every `interval` seconds until `stop_event` is set; errors never stop it."""
        stop = stop_event or self.stop_event
        while not stop.is_set():
            self.safe_tick()
            stop.wait(self.interval)

    def safe_tick(self) -> dict | None:
        try:
            return self.tick()
        except Exception:
            log.exception("ticker pass failed; trying again in %ss", self.interval)
            return None

    def start_thread(self) -> threading.Thread:
        """Run in a daemon thread (the embedded mode); `stop()` ends it."""
        if self._thread is None or not self._thread.is_alive():
            self.stop_event.clear()
            self._thread = threading.Thread(target=self.run_forever, args=(self.stop_event,),
                                            name="ccf-ticker", daemon=True)
            self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 5.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)
