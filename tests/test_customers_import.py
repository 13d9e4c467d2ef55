"""Customer CSV import through the service (SQLite and PostgreSQL) and `clientconnect
customers import` / `reference load` on a migrated SQLite file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.cli import main
from app.cli.reference import ensure_reference
from app.config import Settings
from app.domain.access import SYSTEM, Actor
from app.domain.errors import Forbidden, ValidationFailed
from app.domain.states import Role
from app.persistence.crm import Customer, Product
from app.services import customers
from app.services.context import build_context

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "bpmn" / "support_case" / "reference.json"
OLGA = Actor("olga", Role.OPERATOR)
HEADER = "id,name,segment,value_rank,sensitivity,n1_agent,account_manager,email\n"
GOOD_AND_BAD = (
    HEADER
    + "900123456-7,Acme Logística S.A.S.,corporativo,5,high,ana,bruno,tesoreria@acme.co\n"  # 2
    + "800111222,Tienda La 14,pymes,5,low,,,\n"                                         # 3
    + '800333444,"Cacao, Café y Cía",Pyme,40,medium,,,\n'                                  # 4
    + "\n"                                                                                 # 5
    + "9009,X,empresas,0,extreme,,,no-email\n"                                             # 6
    + '860000111,"Textiles\ndel Norte",empresas,20,low,carla,,\n'                          # 7-8
    + "860000222,Sin columnas,empresas\n"                                                  # 9
    + "900123456-7,Acme otra vez,corporativo,5,high,,,\n"                                  # 10
    + "abc,Nombre,personas,10,low,,,\n"                                                    # 11
)
EXPECTED_ERRORS = [
    (3, "segment"), (6, "id"), (6, "value_rank"), (6, "sensitivity"), (6, "email"),
    (9, "row"), (10, "id"), (11, "id")]


def stored(ctx) -> dict[str, Customer]:
    with ctx.unit() as session:
        return {c.id: c for c in session.scalars(select(Customer))}


def issues(result: dict) -> list[tuple[int, str]]:
    return [(e["line"], e["field"]) for e in result["errors"]]


# --- the service ---------------------------------------------------------------------
def test_import_keeps_good_rows_and_reports_bad_ones_by_line(ctx):
    data = ("\ufeff" + GOOD_AND_BAD).encode("utf-8")

    result = customers.import_csv(ctx, OLGA, io.BytesIO(data))

    assert (result["created"], result["updated"]) == (3, 0)
    assert issues(result) == EXPECTED_ERRORS
    assert all(e["message"] for e in result["errors"])
    assert "line 2" in next(e["message"] for e in result["errors"] if e["line"] == 10)
    rows = stored(ctx)
    assert sorted(rows) == ["800333444", "860000111", "900123456-7"]
    acme = rows["900123456-7"]
    assert (acme.name, acme.segment, acme.value_rank, acme.n1_agent, acme.email) == (
        "Acme Logística S.A.S.", "corporativo", 5, "ana", "tesoreria@acme.co")
    assert rows["800333444"].name == "Cacao, Café y Cía" and rows["800333444"].segment == "pyme"
    assert rows["860000111"].n1_agent == "carla" and rows["860000111"].email is None


def test_import_again_updates_and_accepts_text_without_bom(ctx):
    customers.import_csv(ctx, OLGA, io.BytesIO(GOOD_AND_BAD.encode("utf-8")))
    again = ("email,id,name,segment,value_rank,sensitivity,n1_agent,account_manager\n"
             "nueva@acme.co,900.123.456-7,Acme,corporativo,9,medium,bruno,\n"
             "ventas@z.co,700000001,Zeta,personas,100,low,,\n")

    result = customers.import_csv(ctx, SYSTEM, io.StringIO(again))

    assert result == {"created": 1, "updated": 1, "errors": []}
    acme = stored(ctx)["900123456-7"]
    assert (acme.name, acme.value_rank, acme.n1_agent, acme.account_manager, acme.email) == (
        "Acme", 9, "bruno", None, "nueva@acme.co")


@pytest.mark.parametrize(("header", "expected"), [
    ("id,name,segment,value_rank,sensitivity,n1_agent,account_manager\n",
     {("email", "missing column")}),
    (HEADER.replace("email", "correo"),
     {("email", "missing column"), ("correo", "unknown column")}),
    (HEADER.strip() + ",name\n", {("name", "repeated column")}),
])
def test_a_bad_header_rejects_the_whole_file(ctx, header, expected):
    body = header + "900123456-7,Acme,corporativo,5,high,,,x@y.co\n"

    with pytest.raises(ValidationFailed) as caught:
        customers.import_csv(ctx, OLGA, io.BytesIO(body.encode("utf-8")))

    assert {(e["field"], e["message"]) for e in caught.value.errors} == expected
    assert all(e["line"] == 1 for e in caught.value.errors)
    assert stored(ctx) == {}


def test_empty_or_non_utf8_file_is_rejected(ctx):
    with pytest.raises(ValidationFailed) as empty:
        customers.import_csv(ctx, OLGA, io.BytesIO(b""))
    with pytest.raises(ValidationFailed) as latin:
        customers.import_csv(ctx, OLGA, io.BytesIO((HEADER + "900123456,Compañía,pyme,5,low,,,\n")
                                                   .encode("latin-1")))

    assert len(empty.value.errors) == 8
    assert latin.value.message == "the file is not UTF-8 text"
    assert latin.value.errors[0]["line"] == 2
    assert stored(ctx) == {}


def test_agents_may_not_import(ctx):
    with pytest.raises(Forbidden):
        customers.import_csv(ctx, Actor("ana", Role.AGENT, frozenset({"posventa"})),
                             io.BytesIO(GOOD_AND_BAD.encode("utf-8")))
    assert stored(ctx) == {}


# --- the command line (SQLite file, migrated by `clientconnect db upgrade`) -------------
@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'instance' / 'clientconnect.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CLIENTCONNECT_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    upgraded = run("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    context = build_context(Settings.from_env())
    yield context
    context.sessions.kw["bind"].dispose()


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_cli_import_prints_counts_and_bad_lines(cli_db, tmp_path):
    path = tmp_path / "clientes.csv"
    path.write_bytes(("\ufeff" + GOOD_AND_BAD).encode("utf-8"))

    result = run("customers", "import", str(path))

    assert result.exit_code == 1, result.output
    assert result.stdout.strip() == "created: 3, updated: 0"
    lines = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert [line.split(":")[0:2] for line in lines] == [
        [f"line {n}", f" {field}"] for n, field in EXPECTED_ERRORS]
    assert lines[0] == "line 3: segment: one of personas, pyme, empresas, corporativo"
    assert sorted(stored(cli_db)) == ["800333444", "860000111", "900123456-7"]


def test_cli_import_of_a_clean_file_exits_0(cli_db, tmp_path):
    path = tmp_path / "clientes.csv"
    path.write_text(HEADER + "900123456-7,Acme,corporativo,5,high,,,\n", encoding="utf-8")

    first, second = run("customers", "import", str(path)), run("customers", "import", str(path))

    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "created: 1, updated: 0" and first.stderr == ""
    assert second.stdout.strip() == "created: 0, updated: 1"


def test_cli_import_with_a_bad_header_stores_nothing(cli_db, tmp_path):
    path = tmp_path / "clientes.csv"
    path.write_text("id,name\n900123456,Acme\n", encoding="utf-8")

    result = run("customers", "import", str(path))

    assert result.exit_code == 1
    assert result.stderr.startswith("error: the header must name the columns id,name,")
    assert "email: missing column" in result.stderr
    assert "Traceback" not in result.output
    assert stored(cli_db) == {}


def test_cli_reference_load_and_serve_bootstrap(cli_db, tmp_path):
    bpmn_dir = tmp_path / "bpmn"
    (bpmn_dir / "support_case").mkdir(parents=True)
    (bpmn_dir / "support_case" / "reference.json").write_bytes(REFERENCE.read_bytes())

    assert ensure_reference(cli_db, tmp_path / "nothing") is False
    assert ensure_reference(cli_db, bpmn_dir) is True
    assert ensure_reference(cli_db, bpmn_dir) is False
    loaded = run("reference", "load", str(REFERENCE))
    broken = tmp_path / "broken.json"
    broken.write_text('{"products": [{"name": ""}]}', encoding="utf-8")
    refused = run("reference", "load", str(broken))

    assert loaded.exit_code == 0, loaded.output
    assert loaded.stdout.strip() == ("products created: 0, products updated: 0, "
                                     "typologies created: 0, typologies updated: 0")
    assert refused.exit_code == 1 and "products[0].name: a name of 1-100" in refused.stderr
    with cli_db.unit() as session:
        assert len(list(session.scalars(select(Product)))) == 10
