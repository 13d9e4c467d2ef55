"""Shared fixtures: real PostgreSQL and SQLite databases, real .bpmn files, API clients."""

from __future__ import annotations

import io
import json
import os
import threading
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import create_engine, text

from app import create_app
from app.config import Settings
from app.domain.access import SYSTEM
from app.persistence.db import make_engine
from app.persistence.models import Base
from app.services import jobs, reference, users
from app.services.context import build_context

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
FORMS = ROOT / "forms"
APPROVAL = ROOT / "bpmn" / "approval" / "approval.bpmn"
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    yield from _pg_schema()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler for local test servers that does not log every request."""

    def log_message(self, *args):
        return None

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """Answer with `body` and its length."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def local_server(handler: type[BaseHTTPRequestHandler]):
    """Serve `handler` on an ephemeral loopback port in a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def counting_hook():
    """A local HTTP endpoint counting its GET calls per path; /fail answers 500. Yields
    (base URL, Counter of paths)."""
    hits = Counter()

    class Handler(QuietHandler):
        def do_GET(self):
            hits[self.path] += 1
            self.reply(*((500, b'{"error": "down"}') if self.path == "/fail"
                         else (200, b'{"ok": true}')))

    with local_server(Handler) as base:
        yield base, hits


@pytest.fixture
def redis():
    """Redis db 15, flushed before and after the test."""
    connection = Redis.from_url(REDIS_URL)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def wait_bpmn(process_id: str, duration: str) -> bytes:
    """A process that waits on a timer for `duration` (ISO 8601), then offers the user task
    `after`."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  id="{process_id}_definitions" targetNamespace="http://clientconnect.example/bpmn">
  <bpmn:process id="{process_id}" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait">
      <bpmn:timerEventDefinition id="wait_timer">
        <bpmn:timeDuration>"{duration}"</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="after"/>
    <bpmn:userTask id="after" name="After the wait"/>
    <bpmn:sequenceFlow id="f3" sourceRef="after" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
""".encode()


@pytest.fixture
def pg_schema_url():
    """A fresh, empty PostgreSQL schema for one test (dropped afterwards)."""
    yield from _pg_schema()


def _pg_schema():
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def settings(database_url, tmp_path):
    return Settings(database_url=database_url, instance_dir=tmp_path / "instance",
                    forms_dir=FORMS, bpmn_dir=ROOT / "bpmn",
                    job_backoff_seconds=0.0, password_profile="CHEAPEST")


@dataclass
class Recorder:
    """Collects dispatched job ids; `drain` runs them as a worker would, until none are left."""

    ids: list[int] = field(default_factory=list)
    ctx: object = None

    def dispatch(self, job_ids):
        self.ids.extend(job_ids)

    def drain(self) -> list[str]:
        outcomes = []
        while self.ids:
            outcomes.append(jobs.run(self.ctx, self.ids.pop(0)))
        return outcomes


@pytest.fixture
def dispatcher():
    return Recorder()


@pytest.fixture
def ctx(settings, dispatcher):
    Base.metadata.create_all(make_engine(settings.database_url))
    context = build_context(settings, dispatcher)
    dispatcher.ctx = context
    yield context
    context.sessions.kw["bind"].dispose()


USERS = {
    "ana": ("agent", ["sales"]),
    "bruno": ("agent", ["managers"]),
    "carla": ("agent", ["sales", "managers"]),
    "olga": ("operator", []),
    "diego": ("designer", []),
    "root": ("admin", []),
}


class ApiClient:
    """A Flask test client that sends one user's bearer token."""

    def __init__(self, client, token):
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method):
        def call(url, **kwargs):
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return getattr(self.client, method)(url, headers=headers, **kwargs)
        return call


@pytest.fixture
def app(ctx):
    return create_app(context=ctx)


@pytest.fixture
def as_user(app, ctx):
    client = app.test_client()
    tokens = {}
    for name, (role, groups) in USERS.items():
        users.create_user(ctx, name, "password123", role, groups)
        tokens[name] = users.create_token(ctx, name)
    return {name: ApiClient(client, token) for name, token in tokens.items()}


def deploy_files(as_user, *paths: Path):
    files = [(io.BytesIO(p.read_bytes()), p.name) for p in paths]
    response = as_user["diego"].post("/api/definitions", data={"files": files},
                                     content_type="multipart/form-data")
    return response


@pytest.fixture
def approval(as_user):
    response = deploy_files(as_user, APPROVAL)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["definitions"][0]


SUPPORT = ROOT / "bpmn" / "support_case"
SUPPORT_TEAM = {  # username: (role, groups)
    "pia": ("agent", ["posventa"]),
    "oscar": ("agent", ["ops_pagos"]),
    "irene": ("agent", ["ops_internacional"]),
    "tomas": ("agent", ["tec_swift"]),
}


@pytest.fixture
def support(app, ctx, as_user):
    files = [(io.BytesIO(p.read_bytes()), p.name) for p in sorted(SUPPORT.iterdir())
             if p.suffix in (".bpmn", ".dmn")]
    deployed = as_user["diego"].post("/api/definitions", data={"files": files},
                                     content_type="multipart/form-data")
    assert deployed.status_code == 201, deployed.get_json()
    reference.load_reference(ctx, SYSTEM, json.loads((SUPPORT / "reference.json").read_text()))
    client = app.test_client()
    team = dict(as_user)
    for name, (role, groups) in SUPPORT_TEAM.items():
        users.create_user(ctx, name, "password123", role, groups)
        team[name] = ApiClient(client, users.create_token(ctx, name))
    created = team["olga"].post("/api/customers", json={
        "id": "900123456-7", "name": "Acme Logística", "segment": "corporativo",
        "value_rank": 8, "sensitivity": "high", "n1_agent": "pia",
        "account_manager": "root", "email": "tesoreria@acme.example"})
    assert created.status_code == 201, created.get_json()
    return team
