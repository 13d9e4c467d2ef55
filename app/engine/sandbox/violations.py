"""Sandbox violations: their exceptions, and the per-thread record of the first one, which
the except/finally blocks of the script re-raise (violations cannot be swallowed)."""

from __future__ import annotations

import threading
import time

from .limits import MAX_ITEMS


class SandboxViolation(Exception):
    """A script tried a blocked operation."""


class ScriptTimeout(SandboxViolation):
    """A script ran past its time limit."""


class _State(threading.local):
    violation: SandboxViolation | None = None  # first violation of the running script
    deadline = float("inf")


_state = _State()


def _deny(message: str, cls: type[SandboxViolation] = SandboxViolation) -> SandboxViolation:
    """Record a violation so that except/finally blocks of the script re-raise it."""
    exc = cls(message)
    if _state.violation is None:
        _state.violation = exc
    return exc


def _too_large(what: str = "value") -> SandboxViolation:
    return _deny(f"{what} too large (more than {MAX_ITEMS} items)")


def _reraise() -> None:
    """Injected at the top of every except/finally block: violations cannot be swallowed."""
    if _state.violation is not None:
        raise _state.violation
    if time.monotonic() > _state.deadline:
        raise _deny("script exceeded its time limit", ScriptTimeout)
