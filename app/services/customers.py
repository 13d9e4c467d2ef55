"""Customers (keyed by NIT): create, read with their cases, search, patch, CSV import."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain.access import Actor, can_operate, require
from app.domain.crm import CUSTOMER_FIELDS, can_read_customers, validate_customer
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.persistence.crm import Customer, SupportCase

CASES_SHOWN = 100
_CHUNK = 500  # ids per IN (...) when an import looks up existing customers


def create(ctx, actor: Actor, fields: dict) -> dict:
    require(can_operate(actor), "create customers")
    values = validate_customer(fields, partial=False)
    try:
        with ctx.unit() as session:
            if session.get(Customer, values["id"]) is not None:
                raise Conflict(f"customer {values['id']} already exists")
            customer = Customer(**values)
            session.add(customer)
            session.flush()
            return customer_item(customer)
    except IntegrityError:
        raise Conflict(f"customer {values['id']} already exists") from None


def get(ctx, actor: Actor, customer_id: str) -> dict:
    """A customer with their latest cases, newest first."""
    require(can_read_customers(actor), "read customers")
    with ctx.unit() as session:
        customer = _customer_or_404(session, customer_id)
        cases = session.scalars(select(SupportCase).where(SupportCase.customer_id == customer.id)
                                .order_by(SupportCase.created_at.desc(), SupportCase.id.desc())
                                .limit(CASES_SHOWN))
        return {**customer_item(customer), "cases": [_case_item(case) for case in cases]}


def search(ctx, actor: Actor, segment: str | None = None, q: str | None = None, page: int = 1,
           per_page: int = 50) -> dict:
    """Customers by name (any case); `q` matches the start of the name (any case) or of the NIT."""
    require(can_read_customers(actor), "read customers")
    query = select(Customer)
    if segment is not None:
        query = query.where(Customer.segment == segment)
    if q and q.strip():
        text = q.strip()
        query = query.where(or_(
            func.lower(Customer.name).startswith(text.lower(), autoescape=True),
            Customer.id.startswith(text.replace(".", ""), autoescape=True)))
    with ctx.unit() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.scalars(query.order_by(func.lower(Customer.name), Customer.id)
                               .offset((page - 1) * per_page).limit(per_page))
        return {"items": [customer_item(row) for row in rows], "total": total}


def patch(ctx, actor: Actor, customer_id: str, changes: dict) -> dict:
    require(can_operate(actor), "change customers")
    if "id" in changes:
        raise ValidationFailed("invalid customer",
                               [{"field": "id", "message": "the NIT cannot be changed"}])
    values = validate_customer(changes, partial=True)
    with ctx.unit() as session:
        customer = _customer_or_404(session, customer_id)
        for name, value in values.items():
            setattr(customer, name, value)
        session.flush()
        return customer_item(customer)


def customer_item(customer: Customer) -> dict:
    return {name: getattr(customer, name) for name in CUSTOMER_FIELDS} | {
        "created_at": customer.created_at, "updated_at": customer.updated_at}


def _case_item(case: SupportCase) -> dict:
    return {"id": case.id, "product": case.product, "typology": case.typology,
            "status": case.status, "priority": case.priority, "created_at": case.created_at}


def _customer_or_404(session: Session, customer_id: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


# --- CSV import -------------------------------------------------------------------
def import_csv(ctx, actor: Actor, stream) -> dict:
    """Create or update the customers of a CSV file (header: the customer fields, any order).

    Bad rows are reported by line (the header is line 1) and skipped; the good rows are
    written in one transaction. A bad header or encoding rejects the whole file."""
    require(can_operate(actor), "import customers")
    reader = csv.reader(io.StringIO(_text_of(stream), newline=""))
    columns = _header(reader)
    good, errors = _rows(reader, columns)
    created, updated = _upsert(ctx, good)
    return {"created": created, "updated": updated, "errors": errors}


def _text_of(stream) -> str:
    raw = stream.read()
    if isinstance(raw, str):
        return raw.removeprefix("\ufeff")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("the file is not UTF-8 text", [
            {"line": raw.count(b"\n", 0, exc.start) + 1, "field": "file",
             "message": f"byte {exc.start} is not UTF-8"}]) from None


def _header(reader) -> list[str]:
    columns = [name.strip().lower() for name in next(reader, [])]
    issues = [(name, "missing column") for name in CUSTOMER_FIELDS if name not in columns]
    issues += [(name or "(empty)", "unknown column") for name in columns
               if name not in CUSTOMER_FIELDS]
    issues += [(name, "repeated column") for name in sorted(set(columns))
               if name in CUSTOMER_FIELDS and columns.count(name) > 1]
    if issues:
        raise ValidationFailed(
            f"the header must name the columns {','.join(CUSTOMER_FIELDS)}",
            [{"line": 1, "field": field, "message": message} for field, message in issues])
    return columns


def _rows(reader, columns: list[str]) -> tuple[dict[str, dict], list[dict]]:
    """The valid rows by NIT, and the errors of the others."""
    good: dict[str, dict] = {}
    lines: dict[str, int] = {}
    errors: list[dict] = []
    last = reader.line_num
    for values in reader:
        line, last = last + 1, reader.line_num
        if not any(value.strip() for value in values):
            continue
        problems, row = _check_row(values, columns)
        if row and row["id"] in lines:
            problems = [{"field": "id", "message": f"repeats the NIT of line {lines[row['id']]}"}]
        if problems:
            errors.extend({"line": line, **problem} for problem in problems)
            continue
        good[row["id"]], lines[row["id"]] = row, line
    return good, errors


def _check_row(values: list[str], columns: list[str]) -> tuple[list[dict], dict | None]:
    if len(values) != len(columns):
        message = f"{len(values)} values for {len(columns)} columns"
        return [{"field": "row", "message": message}], None
    try:
        return [], validate_customer(dict(zip(columns, values, strict=True)), partial=False)
    except ValidationFailed as exc:
        return exc.errors, None


def _upsert(ctx, rows: dict[str, dict]) -> tuple[int, int]:
    if not rows:
        return 0, 0
    with ctx.unit() as session:
        existing = _existing(session, list(rows))
        for nit, values in rows.items():
            if nit in existing:
                for name, value in values.items():
                    setattr(existing[nit], name, value)
            else:
                session.add(Customer(**values))
    return len(rows) - len(existing), len(existing)


def _existing(session: Session, ids: list[str]) -> dict[str, Customer]:
    found: dict[str, Customer] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        found.update((c.id, c) for c in session.scalars(
            select(Customer).where(Customer.id.in_(chunk))))
    return found
