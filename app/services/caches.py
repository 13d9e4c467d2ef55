"""Small in-process caches that spare a request its database round trips.

- `TokenCache`: API token digest -> actor, for a few seconds. A request then authenticates
  without a transaction of its own. The price: revoking a token, deactivating its user or
  changing the user's role or groups takes effect in each server process within the TTL
  (`TOKEN_TTL_SECONDS`), not at once. Failed look-ups are never cached.
- `DefinitionCache`: deployed process definitions by id. A definition row never changes
  once deployed (a changed model is a new version, a new row), so it is safe to keep.

Both are bounded LRU maps, safe to share between a server's threads.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, make_transient_to_detached

from app.persistence.models import ProcessDefinition

TOKEN_TTL_SECONDS = 10.0


class _Lru:
    def __init__(self, size: int):
        self._size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class TokenCache:
    """Token digest -> actor for `ttl` seconds, at most `size` tokens."""

    def __init__(self, ttl: float = TOKEN_TTL_SECONDS, size: int = 4096,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl, self._clock, self._items = ttl, clock, _Lru(size)

    def get(self, digest: str):
        entry = self._items.get(digest)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def put(self, digest: str, actor) -> None:
        if self.ttl > 0:
            self._items.put(digest, (self._clock() + self.ttl, actor))

    def clear(self) -> None:
        self._items.clear()


class DefinitionCache:
    """Process definitions by id, loaded once per process. They are detached copies of
    the rows without their deferred XML and spec (read-only: never add them to a session);
    `spec_json` reads the spec when the engine has not restored it yet."""

    def __init__(self, size: int = 256):
        self._items = _Lru(size)

    def get(self, session: Session, definition_id: int) -> ProcessDefinition | None:
        cached = self._items.get(definition_id)
        if cached is not None:
            return cached
        definition = session.get(ProcessDefinition, definition_id)
        if definition is None:
            return None
        copy = _detached_copy(definition)
        self._items.put(definition_id, copy)
        return copy

    def get_many(self, session: Session, ids: set[int]) -> list[ProcessDefinition]:
        """Several definitions; those not cached yet are loaded in one query."""
        found = {i: cached for i in ids if (cached := self._items.get(i)) is not None}
        missing = ids - found.keys()
        if missing:
            for definition in session.scalars(select(ProcessDefinition).where(
                    ProcessDefinition.id.in_(missing))):
                found[definition.id] = copy = _detached_copy(definition)
                self._items.put(definition.id, copy)
        return list(found.values())

    def clear(self) -> None:
        self._items.clear()


_SPEC = select(ProcessDefinition.__table__.c.spec_json).where(
    ProcessDefinition.__table__.c.id == bindparam("definition_id"))


def spec_json(session: Session, definition_id: int) -> str:
    return session.connection().execute(_SPEC, {"definition_id": definition_id}).scalar_one()


def _detached_copy(definition: ProcessDefinition) -> ProcessDefinition:
    """A copy with the columns already loaded, attached to no session (a session's own
    object must not be shared: it expires, and another thread's session would use it)."""
    copy = ProcessDefinition()
    for name in ("id", "process_key", "name", "version", "source_file", "forms",
                 "start_messages", "checksum", "deployed_at", "deployed_by"):
        setattr(copy, name, getattr(definition, name))
    make_transient_to_detached(copy)
    return copy
