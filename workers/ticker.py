"""The ticker: fires due timers and (re-)dispatches the jobs the workers run: service calls
due for a retry or whose lease ran out (a lost dispatch, a dead worker), thrown messages and
notifications.

Timers are claimed in batches (`jobs.fire_due_timers`: one UPDATE ... RETURNING that skips
rows another ticker is claiming) and each batch is fired in one transaction, so several
tickers split the due timers between them. When more timers are due than one batch, and the
dispatcher can hand batches to workers (Redis mode: `RQDispatcher.timer_batches_wanted`),
the ticker also leases batches to the idle workers, who fire them at the same time
(`jobs.lease_due_timers`; a lost batch is due again after its lease). So timer firing scales
with tickers and with workers. A pass keeps firing while timers are due, for at most
`budget` seconds, then re-dispatches; a pass that stopped on its budget is followed at once
by the next one.

Run it as its own process (`clientconnect ticker`) or, in the embedded mode, as a daemon
thread inside the web server (`Ticker.start_thread()`).
"""

from __future__ import annotations

import logging
import threading
import time

from app.services import jobs

log = logging.getLogger(__name__)

BUSY_INTERVAL = 0.1  # seconds between passes while the last one fired timers


class Ticker:
    def __init__(self, ctx, dispatcher, interval: float = 0.5, batch: int = jobs.TIMER_BATCH,
                 budget: float | None = None):
        self.ctx = ctx
        self.dispatcher = dispatcher
        self.interval = interval
        self.batch = batch
        self.budget = max(2.0, 4 * interval) if budget is None else budget
        self.behind = False  # the last pass stopped on its budget with timers still due
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
        fired, deadline = 0, time.monotonic() + self.budget
        self.behind = False
        while True:
            outcomes = jobs.fire_due_timers(self.ctx, self.batch)
            fired += outcomes.count("done")
            if len(outcomes) < self.batch:
                return fired
            self._hand_out()
            if time.monotonic() >= deadline:
                self.behind = True
                return fired

    def _hand_out(self) -> None:
        """More timers are due than one batch: give batches to the workers that can take
        some now (Redis mode), so that they fire them while this ticker fires its own."""
        wanted = getattr(self.dispatcher, "timer_batches_wanted", None)
        batches = wanted() if wanted else 0
        if batches > 0:
            self.dispatcher.dispatch_batches(
                jobs.lease_due_timers(self.ctx, batches * self.batch), self.batch)

    def run_forever(self, stop_event: threading.Event | None = None) -> None:
        """Tick every `interval` seconds (every BUSY_INTERVAL after a pass that fired timers,
        at once after one that stopped on its budget) until `stop_event` is set; errors never
        stop it."""
        stop = stop_event or self.stop_event
        while not stop.is_set():
            counts = self.safe_tick()
            if counts is None or not self.behind:  # while timers fire, more are due soon
                stop.wait(min(self.interval, BUSY_INTERVAL) if counts and counts["timers"]
                          else self.interval)

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
