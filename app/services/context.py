"""The wiring every use case receives: settings, sessions, the engine and the job dispatcher."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.engine import Engine
from app.engine.functions import load_calendars
from app.persistence.db import (
    make_engine,
    make_read_engine,
    make_session_factory,
    read_scope,
    session_scope,
)

from .caches import DefinitionCache, TokenCache


class Dispatcher(Protocol):
    """Carries job ids to whatever runs them. Losing a dispatch loses nothing: the ticker
    re-dispatches pending jobs whose lease ran out."""

    def dispatch(self, job_ids: list[int]) -> None: ...


class NoDispatch:
    """For processes that never enqueue (the ticker enqueues through its own dispatcher)."""

    def dispatch(self, job_ids: list[int]) -> None:
        return None


@dataclass
class Context:
    settings: Settings
    sessions: sessionmaker[Session]
    reads: sessionmaker[Session]  # units that write nothing (see `read`)
    engine: Engine
    dispatcher: Dispatcher
    listeners: dict = field(default_factory=dict)  # process_key -> [fn(session, instance, ...)]
    tokens: TokenCache = field(default_factory=TokenCache)  # API token -> actor, a few seconds
    definitions: DefinitionCache = field(default_factory=DefinitionCache)  # immutable rows

    @contextmanager
    def unit(self) -> Iterator[Session]:
        """One transaction; new jobs are dispatched by the caller after it commits."""
        with session_scope(self.sessions) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A unit that only reads (`db.make_read_engine`): on PostgreSQL each statement sees
        what is committed when it starts, so a read of several statements may see a step
        another transaction committed in between."""
        with read_scope(self.reads) as session:
            yield session

    @property
    def is_postgres(self) -> bool:
        return self.sessions.kw["bind"].dialect.name == "postgresql"


def _listeners() -> dict:
    from .listeners import listeners  # the projections import the use cases, which import us
    return listeners()


def build_context(settings: Settings, dispatcher: Dispatcher | None = None) -> Context:
    db = make_engine(settings.database_url)
    return Context(
        settings=settings,
        sessions=make_session_factory(db),
        reads=make_session_factory(make_read_engine(db)),
        engine=Engine(script_timeout=settings.script_timeout_seconds,
                      calendars=load_calendars(settings.calendars_file)),
        dispatcher=dispatcher or NoDispatch(),
        listeners=_listeners(),
    )
