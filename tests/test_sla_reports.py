"""GET /api/sla/report and /api/sla/at-risk against hand-computed figures."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from app.domain.calendar import BusinessCalendar
from app.persistence.crm import Customer, SupportCase
from app.services import sla

BOG = ZoneInfo("America/Bogota")
CAL = BusinessCalendar.default().to_dict()


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=BOG)  # Mon 19 - Fri 23 Oct 2026, no holiday


# created, target minutes, resolved, product, segment, resolved_tier
# Business minutes to resolution: 300, 900, 480; open ones at Fri 23 09:00: 1860 and 60
CASES = [
    (_at(19, 8), 600, _at(19, 13), "Pagos", "pyme", "N1"),       # 300 min: met
    (_at(19, 9), 600, _at(20, 14), "Pagos", "empresas", "N2"),   # 900 min: breached
    (_at(20, 8), 480, _at(20, 16), "Swift", "pyme", "N3"),       # 480 min: met (exactly)
    (_at(20, 8), 600, None, "Swift", "empresas", "N2"),          # open: at 23 09:00 = 1860 min
    (_at(23, 8), 600, None, "Pagos", "pyme", "N1"),              # open: at 23 09:00 = 60 min
]


@pytest.fixture
def dataset(ctx):
    ids = []
    with ctx.unit() as session:
        session.add(Customer(id="800100200", name="Fixture SA", segment="pyme", value_rank=40,
                             sensitivity="low", email="f@example.com"))
        session.flush()
        for created, target, resolved, product, segment, tier in CASES:
            case = SupportCase(
                customer_id="800100200", product=product, typology="Otros", channel="email",
                subject="s", description="d", impact="one_user", segment=segment,
                priority="P3", status="resolved" if resolved else "open", tier=tier,
                resolved_tier=tier if resolved else None, created_at=created,
                resolved_at=resolved, sla_minutes=target, calendar="default", calendar_def=CAL)
            with time_machine.travel(_at(23, 9), tick=False):
                sla.refresh(case)
            session.add(case)
            session.flush()
            ids.append(case.id)
    return ids


def test_report_by_product(as_user, dataset):
    with time_machine.travel(_at(23, 9), tick=False):
        body = as_user["olga"].get("/api/sla/report?group_by=product").get_json()
    rows = {r["group"]: r for r in body["items"]}
    assert rows["Pagos"] == {"group": "Pagos", "cases": 3, "resolved": 2, "compliance_pct": 50.0,
                             "breaches": 1, "mean_business_hours": 10.0,
                             "p90_business_hours": 15.0, "ola_compliance_pct": None,
                             "ola_mean_business_hours": None}
    assert rows["Swift"] == {"group": "Swift", "cases": 2, "resolved": 1, "compliance_pct": 100.0,
                             "breaches": 1, "mean_business_hours": 8.0,
                             "p90_business_hours": 8.0, "ola_compliance_pct": None,
                             "ola_mean_business_hours": None}


def test_report_by_segment_and_tier_and_period(as_user, dataset):
    with time_machine.travel(_at(23, 9), tick=False):
        segments = as_user["olga"].get("/api/sla/report?group_by=segment").get_json()["items"]
        tiers = as_user["olga"].get("/api/sla/report?group_by=tier").get_json()["items"]
        period = as_user["olga"].get("/api/sla/report", query_string={
            "from": "2026-10-20T00:00:00-05:00", "to": "2026-10-21T00:00:00-05:00"}).get_json()
    assert {r["group"]: (r["resolved"], r["compliance_pct"]) for r in segments} == {
        "empresas": (1, 0.0), "pyme": (2, 100.0)}
    assert {r["group"]: r["cases"] for r in tiers} == {"N1": 2, "N2": 2, "N3": 1}
    assert [(r["group"], r["cases"]) for r in period["items"]] == [("Swift", 2)]
    assert as_user["olga"].get("/api/sla/report?group_by=color").status_code == 422


def test_at_risk_lists_open_cases_worst_first(as_user, dataset):
    with time_machine.travel(_at(23, 9), tick=False):
        items = as_user["olga"].get("/api/sla/at-risk").get_json()["items"]
    assert [i["id"] for i in items] == [dataset[3]]  # 1860 of 600 minutes; the other is at 10%
    assert items[0]["sla"]["state"] == "breached"
    assert items[0]["sla"]["remaining_business_minutes"] == -1260.0  # 600 + 600 + 600 + 60
