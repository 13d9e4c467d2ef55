"""Products, typologies and customers through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from app.persistence.crm import SupportCase
from app.services.reference import find_product, find_typology, merge_groups, name_key

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "bpmn" / "support_case" / "reference.json"
SEED_PRODUCTS = ["Pagos", "Recaudos", "Depósitos", "Transporte de Efectivo", "Swift",
                 "Conexión Directa", "Sucursal Digital", "Tarjetas", "Adquirencia",
                 "Pasarela de Pagos"]
ACME = {"id": "900123456-7", "name": "Acme Logística S.A.S.", "segment": "corporativo",
        "value_rank": 5, "sensitivity": "high", "n1_agent": "ana", "account_manager": "bruno",
        "email": "tesoreria@acme.com.co"}


def seed() -> dict:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


def fields_of(response) -> set[str]:
    return {error["field"] for error in response.get_json()["errors"]}


@pytest.fixture
def loaded(as_user):
    response = as_user["diego"].put("/api/reference", json=seed())
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# --- reference data ---------------------------------------------------------------
def test_seed_file_has_the_ten_products_each_with_otros_and_guides():
    products = seed()["products"]

    assert [p["name"] for p in products] == SEED_PRODUCTS
    for product in products:
        names = [t["name"] for t in product["typologies"]]
        assert 3 <= len(names) <= 6 and "Otros" in names, product["name"]
        assert any(t["n1_resolvable"] for t in product["typologies"]), product["name"]
        for typology in product["typologies"]:
            assert bool(typology["guide"]) == typology["n1_resolvable"], typology["name"]


def test_products_list_with_typologies_and_groups(as_user, loaded):
    response = as_user["ana"].get("/api/products")

    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [p["name"] for p in items] == sorted(SEED_PRODUCTS, key=name_key)
    assert loaded == {"products_created": 10, "products_updated": 0,
                      "typologies_created": sum(len(p["typologies"])
                                                for p in seed()["products"]),
                      "typologies_updated": 0}
    pagos = next(p for p in items if p["name"] == "Pagos")
    assert pagos["active"] is True and "n2_group" in pagos and "n3_group" in pagos
    consulta = next(t for t in pagos["typologies"] if t["name"] == "Consulta de estado de pago")
    assert consulta["n1_resolvable"] is True and consulta["guide"]
    assert {"name": "Otros", "n1_resolvable": False, "guide": None} in pagos["typologies"]


def test_products_need_a_token(as_user, app):
    assert app.test_client().get("/api/products").status_code == 401


def test_reference_reload_counts_only_changes(as_user, loaded):
    data = seed()
    data["products"][0]["typologies"][0]["guide"] = "Revise el código de rechazo."
    data["products"][1]["active"] = False
    data["products"].append({"name": "Crédito", "typologies": [{"name": "Otros"}]})

    response = as_user["root"].put("/api/reference", json=data)

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"products_created": 1, "products_updated": 1,
                                   "typologies_created": 1, "typologies_updated": 1}
    items = {p["name"]: p for p in as_user["ana"].get("/api/products").get_json()["items"]}
    assert items["Recaudos"]["active"] is False
    assert items["Pagos"]["typologies"][0]["guide"] == "Revise el código de rechazo."


def test_reference_errors_name_the_path_and_store_nothing(as_user):
    data = seed()
    data["products"][2]["typologies"][0]["name"] = " "
    data["products"][3]["typologies"][1]["n1_resolvable"] = "yes"
    data["products"][4]["name"] = "Pagos"
    data["products"][5]["typologies"].append({"name": "Otros"})
    data["products"][6]["colour"] = "red"

    response = as_user["diego"].put("/api/reference", json=data)

    assert response.status_code == 422
    assert fields_of(response) == {
        "products[2].typologies[0].name", "products[3].typologies[1].n1_resolvable",
        "products[4].name", "products[5].typologies[5].name", "products[6].colour"}
    assert as_user["ana"].get("/api/products").get_json()["items"] == []


def test_designer_creates_and_changes_a_product(as_user, loaded):
    diego = as_user["diego"]
    created = diego.post("/api/products", json={"name": "Crédito Rotativo", "typologies": [
        {"name": "Consulta de cupo", "n1_resolvable": True, "guide": "Consulte el cupo."},
        {"name": "Otros"}]})
    renamed = diego.patch(f"/api/products/{quote('Crédito Rotativo')}", json={
        "name": "Crédito", "active": False,
        "add_typologies": [{"name": "Desembolso no recibido"}]})
    replaced = diego.patch("/api/products/Swift", json={"typologies": [
        {"name": "Giro devuelto"}, {"name": "Otros", "n1_resolvable": True, "guide": "Guía."}]})

    assert created.status_code == 201, created.get_json()
    assert created.get_json()["typologies"][0] == {
        "name": "Consulta de cupo", "n1_resolvable": True, "guide": "Consulte el cupo."}
    assert renamed.status_code == 200, renamed.get_json()
    assert renamed.get_json()["name"] == "Crédito" and renamed.get_json()["active"] is False
    assert [t["name"] for t in renamed.get_json()["typologies"]] == [
        "Consulta de cupo", "Otros", "Desembolso no recibido"]
    assert replaced.status_code == 200, replaced.get_json()
    assert replaced.get_json()["typologies"] == [
        {"name": "Giro devuelto", "n1_resolvable": False, "guide": None},
        {"name": "Otros", "n1_resolvable": True, "guide": "Guía."}]


def test_product_conflicts_and_unknown_names(as_user, loaded):
    diego = as_user["diego"]

    assert diego.post("/api/products", json={"name": "Pagos"}).status_code == 409
    assert diego.patch("/api/products/Swift", json={"name": "Pagos"}).status_code == 409
    assert diego.patch("/api/products/Nada", json={"active": False}).status_code == 404
    bad = diego.post("/api/products", json={"name": "X", "typologies": [{"name": ""}]})
    assert bad.status_code == 422 and fields_of(bad) == {"typologies.0.name"}
    twice = diego.post("/api/products", json={"name": "X", "typologies": [
        {"name": "Otros"}, {"name": "Otros"}]})
    assert twice.status_code == 422 and fields_of(twice) == {"typologies[1].name"}


@pytest.mark.parametrize("user", ["ana", "olga"])
def test_only_designers_and_admins_change_reference_data(as_user, loaded, user):
    client = as_user[user]

    assert client.post("/api/products", json={"name": "Nuevo"}).status_code == 403
    assert client.patch("/api/products/Pagos", json={"active": False}).status_code == 403
    assert client.put("/api/reference", json=seed()).status_code == 403
    assert as_user["root"].post("/api/products", json={"name": "Nuevo"}).status_code == 201


def test_find_typology_for_other_services(ctx, loaded):
    with ctx.unit() as session:
        found = find_typology(session, "Sucursal Digital", "Token")
        assert found is not None and found.n1_resolvable is True
        assert find_typology(session, "Sucursal Digital", "Pago rechazado") is None
        assert find_typology(session, "Nada", "Otros") is None
        assert find_product(session, "Swift").active is True


def test_merge_groups_fills_known_products_and_none_for_the_rest():
    products = [{"name": "Pagos", "typologies": []}, {"name": "Swift", "typologies": []}]
    groups = {"Pagos": {"n2_group": "ops_pagos", "n3_group": "ti_pagos"}}

    assert merge_groups(products, groups) == [
        {"name": "Pagos", "typologies": [], "n2_group": "ops_pagos", "n3_group": "ti_pagos"},
        {"name": "Swift", "typologies": [], "n2_group": None, "n3_group": None}]
    assert products[0] == {"name": "Pagos", "typologies": []}


# --- customers ---------------------------------------------------------------------
def test_customer_create_read_patch(as_user):
    created = as_user["olga"].post("/api/customers", json=ACME)
    again = as_user["root"].post("/api/customers", json={**ACME, "name": "Otra"})
    patched = as_user["olga"].patch(f"/api/customers/{ACME['id']}",
                                    json={"value_rank": 12, "email": None, "segment": "empresas"})
    read = as_user["ana"].get(f"/api/customers/{ACME['id']}")

    assert created.status_code == 201, created.get_json()
    assert {k: created.get_json()[k] for k in ACME} == ACME
    assert again.status_code == 409
    assert patched.status_code == 200, patched.get_json()
    body = read.get_json()
    assert read.status_code == 200
    assert (body["value_rank"], body["email"], body["segment"]) == (12, None, "empresas")
    assert body["name"] == ACME["name"] and body["cases"] == []
    assert as_user["ana"].get("/api/customers/800000001").status_code == 404
    assert as_user["olga"].patch("/api/customers/800000001",
                                 json={"name": "X"}).status_code == 404


def test_agents_read_but_do_not_write_customers(as_user):
    assert as_user["olga"].post("/api/customers", json=ACME).status_code == 201

    assert as_user["ana"].post("/api/customers",
                               json={**ACME, "id": "800111222"}).status_code == 403
    assert as_user["bruno"].patch(f"/api/customers/{ACME['id']}",
                                  json={"name": "X"}).status_code == 403
    assert as_user["diego"].get(f"/api/customers/{ACME['id']}").status_code == 403
    assert as_user["bruno"].get("/api/customers").get_json()["total"] == 1


def test_customer_field_errors_name_each_field(as_user):
    olga = as_user["olga"]
    schema_level = olga.post("/api/customers", json={**ACME, "segment": "gobierno",
                                                     "value_rank": 0})
    rule_level = olga.post("/api/customers", json={**ACME, "id": "90-12A", "email": "x@y",
                                                   "n1_agent": "ana maría"})
    missing = olga.post("/api/customers", json={"id": "900123456"})
    assert olga.post("/api/customers", json=ACME).status_code == 201
    patch = olga.patch(f"/api/customers/{ACME['id']}", json={"value_rank": 101, "name": ""})

    assert schema_level.status_code == 422 and fields_of(schema_level) == {"segment",
                                                                           "value_rank"}
    assert rule_level.status_code == 422 and fields_of(rule_level) == {"id", "email", "n1_agent"}
    assert missing.status_code == 422
    assert fields_of(missing) == {"name", "segment", "value_rank", "sensitivity"}
    assert patch.status_code == 422 and fields_of(patch) == {"value_rank", "name"}
    renamed = olga.patch(f"/api/customers/{ACME['id']}", json={"id": "123456"})
    assert renamed.status_code == 422 and fields_of(renamed) == {"id"}


def test_customer_search_filters_and_pages(as_user):
    for nit, name, segment in [("900100001", "Acme Uno", "corporativo"),
                               ("900100002", "acme dos", "pyme"),
                               ("800200003", "Banana_Co", "pyme"),
                               ("800200004", "Cacao 100%", "empresas"),
                               ("900100005", "Zeta", "corporativo")]:
        response = as_user["olga"].post("/api/customers", json={
            "id": nit, "name": name, "segment": segment, "value_rank": 50,
            "sensitivity": "low"})
        assert response.status_code == 201, response.get_json()
    ana = as_user["ana"]

    def ids(query: str) -> tuple[list[str], int]:
        body = ana.get(f"/api/customers?{query}").get_json()
        return [c["id"] for c in body["items"]], body["total"]

    assert ids("segment=corporativo") == (["900100001", "900100005"], 2)
    assert ids("q=ACME") == (["900100002", "900100001"], 2)
    assert ids("q=8002") == (["800200003", "800200004"], 2)
    assert ids("q=Banana_") == (["800200003"], 1)
    assert ids("q=Cacao%20100%25") == (["800200004"], 1)
    assert ids("q=%25") == ([], 0)
    assert ids("segment=pyme&q=acme") == (["900100002"], 1)
    assert ids("per_page=2&page=2") == (["800200003", "800200004"], 5)
    assert ids("per_page=2&page=3") == (["900100005"], 5)
    assert ids("per_page=2&page=4") == ([], 5)
    assert ana.get("/api/customers?segment=gobierno").status_code == 422


def test_customer_detail_lists_cases_newest_first(as_user, ctx):
    assert as_user["olga"].post("/api/customers", json=ACME).status_code == 201
    start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    with ctx.unit() as session:
        for hours, typology, status in [(0, "Pago rechazado", "closed"),
                                        (5, "Token", "open"), (2, "Otros", "n2")]:
            session.add(SupportCase(
                customer_id=ACME["id"], product="Pagos", typology=typology, channel="email",
                subject="Pago", description="No llegó", impact="one_user",
                segment="corporativo", priority="P2", status=status,
                created_at=start + timedelta(hours=hours)))

    body = as_user["ana"].get(f"/api/customers/{ACME['id']}").get_json()

    assert [(c["typology"], c["status"], c["priority"]) for c in body["cases"]] == [
        ("Token", "open", "P2"), ("Otros", "n2", "P2"), ("Pago rechazado", "closed", "P2")]
    assert set(body["cases"][0]) == {"id", "product", "typology", "status", "priority",
                                     "created_at"}
    assert body["cases"][0]["created_at"].startswith("2026-03-02T19:00:00")
