"""`clientconnect demo-data`: a small dataset driven through the real API, on SQLite and
PostgreSQL, then read back through the API."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from conftest import FORMS, ROOT, ApiClient, _pg_schema

from app import create_app, demo_data
from app.cli import main
from app.config import Settings
from app.persistence import migrate
from app.services import users
from app.services.context import build_context
from workers.queue import SyncDispatcher

UNTIL = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)  # a fixed window: the same dataset every run
ARGS = ["demo-data", "--months", "1", "--per-month", "40", "--seed", "3",
        "--until", UNTIL.strftime("%Y-%m-%dT%H:%M:%S")]


def _environment(monkeypatch, url: str, instance) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CLIENTCONNECT_INSTANCE_DIR", str(instance))
    monkeypatch.setenv("CLIENTCONNECT_BPMN_DIR", str(ROOT / "bpmn"))
    monkeypatch.setenv("CLIENTCONNECT_FORMS_DIR", str(FORMS))
    monkeypatch.delenv("REDIS_URL", raising=False)


def _as_supervisor():
    ctx = build_context(Settings.from_env())
    client = create_app(context=ctx).test_client()
    return ctx, ApiClient(client, users.create_token(ctx, "supervisor"))


def _all_cases(api) -> list[dict]:
    cases, page = [], 1
    while True:
        items = api.get(f"/api/cases?per_page=200&page={page}").get_json()["items"]
        cases += items
        if len(items) < 200:
            return cases
        page += 1


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dataset(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"demo-{request.param}")
    schemas = _pg_schema() if request.param == "postgresql" else None
    url = next(schemas) if schemas else f"sqlite:///{folder / 'instance' / 'demo.db'}"
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _environment(monkeypatch, url, folder / "instance")
            if schemas:
                migrate.upgrade(url)
            result = CliRunner().invoke(main, ARGS)
            assert result.exit_code == 0, result.output
            ctx, api = _as_supervisor()
            cases = _all_cases(api)
            yield SimpleNamespace(output=result.output, api=api, ctx=ctx, cases=cases,
                                  outbox=folder / "instance" / "outbox")
            ctx.sessions.kw["bind"].dispose()
    finally:
        if schemas:
            schemas.close()  # drops the schema


def test_about_the_requested_number_of_cases_spread_over_the_month(dataset):
    created = sorted(datetime.fromisoformat(c["created_at"]) for c in dataset.cases)
    assert len(created) == 40
    assert UNTIL - timedelta(days=31) <= created[0] and created[-1] < UNTIL
    assert created[-1] - created[0] > timedelta(days=20)
    local = [c.astimezone(demo_data.CALENDAR.zone) for c in created]
    assert len({c.date() for c in local}) >= 15
    assert all(c.weekday() < 5 for c in local)
    assert sum(8 <= c.hour < 18 for c in local) >= 0.75 * len(local)


def test_products_follow_the_weights(dataset):
    by_product = Counter(c["product"] for c in dataset.cases)
    assert len(by_product) >= 8
    assert by_product.most_common(1)[0][0] == "Pagos"
    assert by_product["Pagos"] + by_product["Sucursal Digital"] >= 0.3 * len(dataset.cases)
    assert set(by_product) <= set(demo_data.PRODUCTS)


def test_every_path_of_the_mix_happened(dataset):
    cases = dataset.cases
    assert any(c["reprocess_count"] > 0 for c in cases)  # misroute returned to the right group
    assert any(c["became_incident"] and c["resolved_tier"] == "N3" for c in cases)
    assert any(c["reincidence"] for c in cases)
    first_contact = [c for c in cases if c["resolved_tier"] == "N1"]
    assert len(first_contact) >= 5
    assert Counter(c["segment"] for c in cases).keys() >= {"pyme", "empresas", "corporativo"}
    misrouted = next(c for c in cases if c["reprocess_count"] > 0)
    detail = dataset.api.get(f"/api/cases/{misrouted['id']}").get_json()
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[:3] == ["registered", "escalated", "returned_misrouted"]


def test_reopen_windows_closed_at_simulated_times(dataset):
    closed = [c for c in dataset.cases if c["status"] == "closed"]
    assert len(closed) >= 10
    now = datetime.now(UTC)
    for case in closed:
        resolved = datetime.fromisoformat(case["resolved_at"])
        closed_at = datetime.fromisoformat(case["closed_at"])
        assert resolved + timedelta(days=5) <= closed_at < UNTIL + timedelta(hours=1) < now
    assert any(c["status"] in ("open", "waiting_customer", "resolved") for c in dataset.cases)


def test_timelines_and_emails(dataset):
    for case in dataset.cases[:10]:
        timeline = dataset.api.get(f"/api/cases/{case['id']}").get_json()["timeline"]
        assert timeline[0]["kind"] == "registered"
        assert timeline[0]["at"] == case["created_at"]
    mails = list(dataset.outbox.glob("*.eml"))
    assert len(mails) >= 2 * len(dataset.cases)  # registered and resolved, at least
    assert all(m.name < UNTIL.strftime("%Y%m%dT%H%M") for m in mails)


def test_kpis_are_all_computed(dataset):
    report = dataset.api.get("/api/kpis").get_json()
    assert report["cases"] == 40 and report["resolved"] >= 30
    assert all(item["value"] is not None for item in report["indicators"].values())
    assert report["indicators"]["first_contact_resolution_pct"]["value"] > 0
    assert "month 1/1" in dataset.output and "KPIs:" in dataset.output


def test_running_again_adds_another_dataset(tmp_path, monkeypatch):
    _environment(monkeypatch, f"sqlite:///{tmp_path / 'again.db'}", tmp_path / "instance")
    args = ["demo-data", "--months", "1", "--per-month", "6", "--seed", "1"]
    first = CliRunner().invoke(main, args)
    again = CliRunner().invoke(main, args)  # same users and customers: reused
    assert (first.exit_code, again.exit_code) == (0, 0), again.output
    ctx, api = _as_supervisor()
    try:
        assert api.get("/api/cases?per_page=1").get_json()["total"] == 12
        assert api.get("/api/customers?per_page=1").get_json()["total"] == 300
    finally:
        ctx.sessions.kw["bind"].dispose()


def test_until_in_the_future_is_refused(tmp_path, monkeypatch):
    _environment(monkeypatch, f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "instance")
    result = CliRunner().invoke(main, ["demo-data", "--until", "2999-01-01"])
    assert result.exit_code == 2 and "future" in result.output


def test_the_drawn_mix_matches_the_constants():
    reference = json.loads((ROOT / "bpmn" / "support_case" / "reference.json").read_text())
    catalog = {p["name"]: {"typologies": {t["name"]: t["n1_resolvable"]
                                          for t in p["typologies"]}}
               for p in reference["products"]}
    rng = random.Random(11)
    customers = demo_data.make_customers(rng, 300, ["p1", "p2"], ["g1"])
    times = demo_data.registration_times(rng, UNTIL - timedelta(days=91), UNTIL, 3, 816)
    cases = demo_data.plan_cases(rng, catalog, customers, times)
    share = Counter(c.path for c in cases)
    assert len(cases) == 3 * 816 and len(customers) == 300
    assert {c["segment"] for c in customers} == set(demo_data.SEGMENTS)
    assert abs(share["n1"] / len(cases) - demo_data.FIRST_CONTACT) < 0.04
    assert abs(share["misroute"] / len(cases) - demo_data.MISROUTE) < 0.03
    assert abs(share["incident"] / len(cases) - demo_data.INCIDENT) < 0.03
    assert all(catalog[c.product]["typologies"][c.typology] for c in cases if c.path == "n1")
    assert all(c.true_product != c.product for c in cases if c.path == "misroute")
    assert len({c["id"] for c in customers}) == 300


def test_sync_dispatcher_runs_each_job_in_the_callers_thread():
    ran = []

    def run(job_id):
        ran.append((job_id, threading.get_ident()))
        if job_id == 2:
            raise RuntimeError("a failing job does not stop the others")

    SyncDispatcher(run).dispatch([1, 2, 3])
    assert ran == [(n, threading.get_ident()) for n in (1, 2, 3)]
