"""GET /api/kpis against figures computed by hand for a small fixed dataset."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.persistence.crm import Customer, SupportCase

BOGOTA = ZoneInfo("America/Bogota")


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=BOGOTA)  # 19-23 Oct 2026 has no holiday


# created, due, resolved, product, typology, tier, resolved_tier, escalated, reprocess,
# reincidence, incident. Business minutes (Mon-Fri 08-18): 360, 720, 1200, -, 120.
CASES = [
    (_at(19, 9), _at(20, 9), _at(19, 15), "Pagos", "Pago rechazado", "N1", "N1",
     False, 0, False, False),
    (_at(20, 10), _at(21, 10), _at(21, 12), "Pagos", "Pago rechazado", "N2", "N2",
     True, 1, True, False),
    (_at(21, 8), _at(22, 18), _at(23, 8), "Swift", "Giro devuelto", "N2", "N3",
     True, 0, False, True),
    (_at(22, 10), _at(23, 10), None, "Swift", "Giro devuelto", "N2", None, True, 0, False, False),
    (_at(23, 17), datetime(2026, 10, 26, 17, tzinfo=BOGOTA),
     datetime(2026, 10, 26, 9, tzinfo=BOGOTA),
     "Sucursal Digital", "Token", "N1", "N1", False, 0, False, False),
]


@pytest.fixture
def dataset(ctx):
    with ctx.unit() as session:
        session.add(Customer(id="800100200", name="Fixture SA", segment="empresas", value_rank=40,
                             sensitivity="low", email="f@example.com"))
        session.flush()
        first = None
        for (created, due, resolved, product, typology, tier, resolved_tier, escalated,
             reprocess, reincidence, incident) in CASES:
            case = SupportCase(
                customer_id="800100200", product=product, typology=typology, channel="email",
                subject="s", description="d", impact="one_user", segment="empresas",
                priority="P3", status="resolved" if resolved else "open", tier=tier,
                created_at=created, due_at=due, resolved_at=resolved,
                resolved_tier=resolved_tier, escalated=escalated, reprocess_count=reprocess,
                became_incident=incident, reincidence_of=first if reincidence else None,
                calendar="default")
            session.add(case)
            session.flush()
            first = first or case.id


def _values(body):
    return {name: item["value"] for name, item in body["indicators"].items()}


def test_kpis_match_hand_computed_figures(as_user, dataset):
    body = as_user["olga"].get("/api/kpis").get_json()
    assert (body["cases"], body["resolved"]) == (5, 4)
    assert _values(body) == {
        "ans_compliance_pct": 50.0,            # cases 1 and 5 of the 4 resolved
        "mean_resolution_business_hours": 10.0,  # (360 + 720 + 1200 + 120) / 4 / 60
        "first_contact_resolution_pct": 50.0,  # cases 1 and 5
        "reprocess_pct": 20.0, "reincidence_pct": 20.0, "incident_share_pct": 20.0,
    }
    assert body["by_product"] == {"Pagos": 2, "Sucursal Digital": 1, "Swift": 2}
    assert body["by_tier"] == {"N1": 2, "N2": 2, "N3": 1}
    assert body["by_typology"]["Swift / Giro devuelto"] == 2
    assert "resolved_at <= due_at" in body["indicators"]["ans_compliance_pct"]["formula"]


def test_kpis_filter_by_product_and_period(as_user, dataset):
    swift = as_user["olga"].get("/api/kpis?product=Swift").get_json()
    assert (swift["cases"], swift["resolved"]) == (2, 1)
    assert _values(swift)["ans_compliance_pct"] == 0.0
    assert _values(swift)["mean_resolution_business_hours"] == 20.0
    assert _values(swift)["incident_share_pct"] == 50.0
    period = as_user["olga"].get(
        "/api/kpis", query_string={"from": "2026-10-21T00:00:00-05:00",
                                   "to": "2026-10-23T00:00:00-05:00"}).get_json()
    assert period["cases"] == 2 and period["by_product"] == {"Swift": 2}
    assert as_user["olga"].get("/api/kpis?segment=personas").get_json()["cases"] == 0
    assert as_user["olga"].get("/api/kpis?from=yesterday").status_code == 422
