"""The `clientconnect` command against a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from app.cli import main
from app.cli.deploy import deploy_bundled
from app.cli.group import format_issue
from app.cli.serve import _gunicorn_options
from app.cli.users import ensure_demo_users
from app.config import Settings
from app.persistence import migrate
from app.persistence.db import make_engine
from app.persistence.models import ApiToken, User
from app.services.context import build_context

ROOT = Path(__file__).resolve().parent.parent
FORMS = ROOT / "forms"
APPROVAL = ROOT / "bpmn" / "approval" / "approval.bpmn"

BROKEN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="broken_definitions" targetNamespace="http://clientconnect.example/bpmn">
  <bpmn:process id="broken" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="upload"/>
    <bpmn:serviceTask id="upload" name="Upload">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="ftp_upload">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="path" type="str" value="&quot;/invoices&quot;"/>
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="upload" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, monkeypatch):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'instance' / 'clientconnect.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CLIENTCONNECT_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("CLIENTCONNECT_FORMS_DIR", str(FORMS))
    monkeypatch.delenv("REDIS_URL", raising=False)
    return url


@pytest.fixture
def migrated(database_url):
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    return database_url


@pytest.fixture
def broken_file(tmp_path) -> Path:
    path = tmp_path / "broken.bpmn"
    path.write_text(BROKEN)
    return path


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def _rows(url: str, query):
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query))
    finally:
        engine.dispose()


def test_db_upgrade_reports_the_revision(database_url):
    result = run("db", "upgrade")

    assert result.exit_code == 0, result.output
    assert f"database at revision {migrate.head()}" in result.stdout
    assert run("db", "current").stdout.strip() == migrate.head()


def test_commands_refuse_an_unmigrated_database(database_url):
    result = run("users", "create", "--username", "ana", "--password", "secret123",
                 "--role", "agent")

    assert result.exit_code == 1
    assert "clientconnect db upgrade" in result.output


def test_users_create_and_token_stored_only_as_hash(migrated):
    created = run("users", "create", "--username", "ana", "--password", "secret123",
                  "--role", "agent", "--groups", "posventa,sales")
    token = run("tokens", "create", "ana")

    assert created.exit_code == 0, created.output
    assert "ana" in created.stdout
    assert token.exit_code == 0, token.output
    printed = token.stdout.strip()
    assert printed.startswith("ccf_") and "\n" not in printed
    users = _rows(migrated, select(User.username, User.role, User.groups, User.password_hash))
    assert [(u[0], u[1], u[2]) for u in users] == [("ana", "agent", ["posventa", "sales"])]
    assert "secret123" not in users[0][3]
    hashes = [row[0] for row in _rows(migrated, select(ApiToken.token_hash))]
    assert hashes == [hashlib.sha256(printed.encode()).hexdigest()]


def test_invalid_user_prints_each_error_without_traceback(migrated):
    result = run("users", "create", "--username", "ana", "--password", "short",
                 "--role", "wizard")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "error: invalid user"
    assert "password: at least 8 characters" in result.stderr
    assert "role: one of" in result.stderr
    assert "Traceback" not in result.output


def test_duplicate_user_and_unknown_token_user_fail(migrated):
    args = ("users", "create", "--username", "bo", "--password", "secret123", "--role", "admin")
    assert run(*args).exit_code == 0

    again, token = run(*args), run("tokens", "create", "nobody")

    assert again.exit_code == 1 and "error: user bo already exists" in again.stderr
    assert token.exit_code == 1 and "error: user nobody not found" in token.stderr
    assert token.stdout == ""


def test_lint_good_file_says_ok(database_url):
    result = run("lint", str(APPROVAL))

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "ok"


def test_lint_broken_file_prints_located_issues(database_url, broken_file):
    result = run("lint", str(broken_file))

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "error: the process model is not valid"
    assert any(line.startswith("broken.bpmn:10: upload: Unknown connector") for line in lines)
    assert "ok" not in result.stdout


def test_lint_without_forms_dir_reports_missing_forms(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("CLIENTCONNECT_FORMS_DIR", str(tmp_path / "no-forms"))

    result = run("lint", str(APPROVAL))

    assert result.exit_code == 1
    assert "approval.bpmn:" in result.stderr and "enter_amount" in result.stderr


def test_deploy_twice_second_is_unchanged(migrated):
    first = run("deploy", str(APPROVAL))
    second = run("deploy", str(APPROVAL))

    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "approval v1 created"
    assert second.exit_code == 0, second.output
    assert second.stdout.strip() == "approval v1 unchanged"


def test_deploy_folder_uses_names_relative_to_it(migrated, tmp_path):
    folder = tmp_path / "models" / "approval"
    folder.mkdir(parents=True)
    (folder / "approval.bpmn").write_bytes(APPROVAL.read_bytes())

    result = run("deploy", str(tmp_path / "models"))

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "approval v1 created"


def test_deploy_broken_file_stores_nothing(migrated, broken_file):
    result = run("deploy", str(broken_file))

    assert result.exit_code == 1
    assert "broken.bpmn:10: upload:" in result.stderr
    assert _rows(migrated, text("SELECT count(*) FROM process_definition")) == [(0,)]


def test_worker_requires_redis(database_url):
    result = run("worker", "--burst")

    assert result.exit_code == 1
    assert "REDIS_URL" in result.output


def test_ticker_once_embedded(migrated):
    result = run("ticker", "--once")

    assert result.exit_code == 0, result.output
    assert "timers fired: 0, dispatched: 0" in result.stdout


@pytest.fixture
def service_ctx(migrated):
    ctx = build_context(Settings.from_env().with_overrides(password_profile="CHEAPEST"))
    yield ctx
    ctx.sessions.kw["bind"].dispose()


def test_serve_bootstrap_deploys_each_process_folder(service_ctx, tmp_path, capsys):
    bpmn_dir = tmp_path / "bpmn"
    (bpmn_dir / "approval").mkdir(parents=True)
    (bpmn_dir / "approval" / "approval.bpmn").write_bytes(APPROVAL.read_bytes())
    (bpmn_dir / "broken").mkdir()
    (bpmn_dir / "broken" / "broken.bpmn").write_text(BROKEN)

    first = deploy_bundled(service_ctx, bpmn_dir)
    second = deploy_bundled(service_ctx, bpmn_dir)

    assert [(d["process_key"], d["created"]) for d in first] == [("approval", True)]
    assert [(d["process_key"], d["created"]) for d in second] == [("approval", False)]
    err = capsys.readouterr().err
    assert "warning: broken not deployed: the process model is not valid" in err
    assert "broken/broken.bpmn:10: upload: Unknown connector" in err


def test_serve_bootstrap_creates_demo_users_once(service_ctx, migrated):
    assert ensure_demo_users(service_ctx) == ["ana", "bruno", "olga", "diego", "admin"]
    assert ensure_demo_users(service_ctx) == []

    users = {u[0]: (u[1], u[2]) for u in _rows(migrated, select(User.username, User.role,
                                                                User.groups))}
    assert users["ana"] == ("agent", ["posventa", "sales"])
    assert users["bruno"] == ("agent", ["managers"])
    assert {name: role for name, (role, _) in users.items()} == {
        "ana": "agent", "bruno": "agent", "olga": "operator", "diego": "designer",
        "admin": "admin"}


def test_format_issue():
    assert format_issue({"file": "a.bpmn", "line": 3, "element_id": "t", "message": "m"}) \
        == "a.bpmn:3: t: m"
    assert format_issue({"file": None, "line": None, "element_id": None, "message": "m"}) == "m"
    assert format_issue({"field": "role", "message": "bad"}) == "role: bad"


def test_serve_runs_threads_embedded_and_sync_workers_with_redis(tmp_path):
    embedded = Settings(database_url="sqlite:///x.db", instance_dir=tmp_path)
    queued = Settings(database_url="sqlite:///x.db", instance_dir=tmp_path,
                      redis_url="redis://127.0.0.1:6379/15")

    one = _gunicorn_options(embedded, "127.0.0.1", 8000, None)
    many = _gunicorn_options(queued, "0.0.0.0", 9000, None)

    assert (one["workers"], one["threads"], one["worker_class"]) == (1, 8, "gthread")
    assert (many["workers"], many["threads"], many["worker_class"]) == (
        2 * os.cpu_count() + 1, 1, "sync")
    assert many["bind"] == "0.0.0.0:9000"
    assert _gunicorn_options(queued, "127.0.0.1", 8000, 3)["workers"] == 3
