"""Reference data of the support flow: products (channels) and their typologies.

The N2/N3 groups of a product are not stored here: they come from the support_case `routing`
DMN (`app.services.routing.groups_for`) and are merged into the product listing."""

from __future__ import annotations

import unicodedata

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain.access import Actor, can_deploy, require
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.persistence.crm import Product, Typology

from . import routing

PRODUCT_KEYS = ("name", "active", "typologies")
PATCH_KEYS = ("name", "active", "typologies", "add_typologies")
TYPOLOGY_KEYS = ("name", "n1_resolvable", "guide")
GUIDE_MAX = 2000


# --- use cases ------------------------------------------------------------------
def load_reference(ctx, actor: Actor, data: dict) -> dict:
    """Create or update every product and typology of `data` ({"products": [...]}).

    Products and typologies missing from `data` are kept as they are."""
    require(can_deploy(actor), "change reference data")
    products = check_reference(data)
    counts = dict.fromkeys(("products_created", "products_updated", "typologies_created",
                            "typologies_updated"), 0)
    with ctx.unit() as session:
        for spec in products:
            product = _upsert_product(session, spec, counts)
            _upsert_typologies(session, product, spec["typologies"], counts)
    return counts


def list_products(ctx) -> dict:
    """Every product, by name (accents and case ignored), with its typologies and routed
    N2/N3 groups."""
    with ctx.unit() as session:
        products = sorted(session.scalars(select(Product)), key=lambda p: name_key(p.name))
        items = _items(session, products)
    return {"items": merge_groups(items, _groups(ctx, [item["name"] for item in items]))}


def create_product(ctx, actor: Actor, data: dict) -> dict:
    require(can_deploy(actor), "change reference data")
    spec = _checked(_product, data, PRODUCT_KEYS)
    try:
        with ctx.unit() as session:
            if find_product(session, spec["name"]) is not None:
                raise Conflict(f"product {spec['name']} already exists")
            product = Product(name=spec["name"], active=spec["active"])
            session.add(product)
            session.flush()
            _upsert_typologies(session, product, spec["typologies"], {})
    except IntegrityError:
        raise Conflict(f"product {spec['name']} already exists") from None
    return _product_item(ctx, spec["name"])


def update_product(ctx, actor: Actor, name: str, changes: dict) -> dict:
    """Rename, (de)activate, replace the typologies (`typologies`) or add/update some
    (`add_typologies`)."""
    require(can_deploy(actor), "change reference data")
    spec = _checked(_patch, changes, PATCH_KEYS)
    try:
        with ctx.unit() as session:
            product = _product_or_404(session, name)
            _rename(session, product, spec.get("name"))
            if "active" in spec:
                product.active = spec["active"]
            if "typologies" in spec:
                _replace_typologies(session, product, spec["typologies"])
            _upsert_typologies(session, product, spec.get("add_typologies", []), {})
            new_name = product.name
    except IntegrityError:
        raise Conflict(f"product {spec.get('name')} already exists") from None
    return _product_item(ctx, new_name)


def has_products(ctx) -> bool:
    with ctx.unit() as session:
        return bool(session.scalar(select(func.count()).select_from(Product)))


# --- for other services (the caller owns the session) --------------------------------
def find_product(session: Session, name: str) -> Product | None:
    return session.scalar(select(Product).where(Product.name == name))


def find_typology(session: Session, product: str, typology: str) -> Typology | None:
    """The typology named `typology` of the product named `product`, or None."""
    return session.scalar(
        select(Typology).join(Product, Product.id == Typology.product_id)
        .where(Product.name == product, Typology.name == typology))


def name_key(name: str) -> str:
    """Sorts names the same on every database: accents and case ignored ("Depósitos" ~ "d")."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def merge_groups(products: list[dict], groups: dict[str, dict]) -> list[dict]:
    """Each product with the `n2_group`/`n3_group` of `groups` (None when unknown)."""
    return [{**item, "n2_group": groups.get(item["name"], {}).get("n2_group"),
             "n3_group": groups.get(item["name"], {}).get("n3_group")} for item in products]


def _groups(ctx, names: list[str]) -> dict[str, dict]:
    return routing.groups_for(ctx, names) if names else {}


# --- reading --------------------------------------------------------------------
def _items(session: Session, products: list[Product]) -> list[dict]:
    typologies: dict[int, list[dict]] = {p.id: [] for p in products}
    if products:
        rows = session.scalars(select(Typology).where(Typology.product_id.in_(list(typologies)))
                               .order_by(Typology.id))
        for row in rows:
            typologies[row.product_id].append(
                {"name": row.name, "n1_resolvable": row.n1_resolvable, "guide": row.guide})
    return [{"name": p.name, "active": p.active, "typologies": typologies[p.id]}
            for p in products]


def _product_item(ctx, name: str) -> dict:
    with ctx.unit() as session:
        items = _items(session, [_product_or_404(session, name)])
    return merge_groups(items, _groups(ctx, [name]))[0]


def _product_or_404(session: Session, name: str) -> Product:
    product = find_product(session, name)
    if product is None:
        raise NotFound(f"product {name} not found")
    return product


# --- writing --------------------------------------------------------------------
def _upsert_product(session: Session, spec: dict, counts: dict) -> Product:
    product = find_product(session, spec["name"])
    if product is None:
        product = Product(name=spec["name"], active=spec["active"])
        session.add(product)
        session.flush()
        counts["products_created"] += 1
    elif product.active != spec["active"]:
        product.active = spec["active"]
        counts["products_updated"] += 1
    return product


def _upsert_typologies(session: Session, product: Product, specs: list[dict],
                       counts: dict) -> None:
    existing = {t.name: t for t in session.scalars(
        select(Typology).where(Typology.product_id == product.id))}
    for spec in specs:
        row = existing.get(spec["name"])
        if row is None:
            session.add(Typology(product_id=product.id, **spec))
            _count(counts, "typologies_created")
        elif (row.n1_resolvable, row.guide) != (spec["n1_resolvable"], spec["guide"]):
            row.n1_resolvable, row.guide = spec["n1_resolvable"], spec["guide"]
            _count(counts, "typologies_updated")
    session.flush()


def _replace_typologies(session: Session, product: Product, specs: list[dict]) -> None:
    keep = [spec["name"] for spec in specs]
    session.execute(delete(Typology).where(Typology.product_id == product.id,
                                           Typology.name.not_in(keep)))
    _upsert_typologies(session, product, specs, {})


def _rename(session: Session, product: Product, name: str | None) -> None:
    if name is None or name == product.name:
        return
    if find_product(session, name) is not None:
        raise Conflict(f"product {name} already exists")
    product.name = name
    session.flush()


def _count(counts: dict, key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


# --- checks: every error names its path, e.g. products[2].typologies[0].name --------------
def check_reference(data) -> list[dict]:
    """The normalized products of a reference document, or ValidationFailed."""
    errors: list[dict] = []
    if not isinstance(data, dict) or not isinstance(data.get("products"), list):
        raise ValidationFailed("invalid reference data",
                               [{"field": "products", "message": "a list of products"}])
    _unknown(data, ("products",), "", errors)
    products = _named_list(data["products"], "products", _product, "product", errors)
    if errors:
        raise ValidationFailed("invalid reference data", errors)
    return products


def _checked(check, data, keys: tuple[str, ...]) -> dict:
    errors: list[dict] = []
    spec = check(data, "", errors, keys)
    if errors:
        raise ValidationFailed("invalid product", errors)
    return spec


def _product(item, path: str, errors: list, keys=PRODUCT_KEYS) -> dict | None:
    if not _is_object(item, path, errors):
        return None
    _unknown(item, keys, path, errors)
    return {"name": _name(item.get("name"), _at(path, "name"), 100, errors),
            "active": _flag(item.get("active", True), _at(path, "active"), errors),
            "typologies": _typologies(item.get("typologies", []), _at(path, "typologies"),
                                      errors)}


def _patch(item, path: str, errors: list, keys=PATCH_KEYS) -> dict:
    if not _is_object(item, path, errors):
        return {}
    _unknown(item, keys, path, errors)
    spec = {}
    if "name" in item:
        spec["name"] = _name(item["name"], _at(path, "name"), 100, errors)
    if "active" in item:
        spec["active"] = _flag(item["active"], _at(path, "active"), errors)
    for key in ("typologies", "add_typologies"):
        if key in item:
            spec[key] = _typologies(item[key], _at(path, key), errors)
    return spec


def _typologies(items, path: str, errors: list) -> list[dict]:
    if not isinstance(items, list):
        errors.append({"field": path, "message": "a list of typologies"})
        return []
    return _named_list(items, path, _typology, "typology", errors)


def _named_list(items: list, path: str, check, kind: str, errors: list) -> list[dict]:
    """Each item checked by `check` at `path[i]`; a name seen before is an error."""
    specs, seen = [], set()
    for index, item in enumerate(items):
        at = f"{path}[{index}]"
        spec = check(item, at, errors)
        if spec is None:
            continue
        if spec["name"] and spec["name"] in seen:
            errors.append({"field": f"{at}.name", "message": f"duplicate {kind}"})
        seen.add(spec["name"])
        specs.append(spec)
    return specs


def _typology(item, path: str, errors: list) -> dict | None:
    if not _is_object(item, path, errors):
        return None
    _unknown(item, TYPOLOGY_KEYS, path, errors)
    guide = item.get("guide")
    if guide is not None and (not isinstance(guide, str) or len(guide) > GUIDE_MAX):
        errors.append({"field": _at(path, "guide"),
                       "message": f"a text of at most {GUIDE_MAX} characters, or null"})
    return {"name": _name(item.get("name"), _at(path, "name"), 150, errors),
            "n1_resolvable": _flag(item.get("n1_resolvable", False),
                                   _at(path, "n1_resolvable"), errors),
            "guide": (guide.strip() or None) if isinstance(guide, str) else None}


def _name(value, path: str, limit: int, errors: list) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit:
        errors.append({"field": path, "message": f"a name of 1-{limit} characters"})
        return ""
    return value.strip()


def _flag(value, path: str, errors: list) -> bool:
    if not isinstance(value, bool):
        errors.append({"field": path, "message": "true or false"})
        return False
    return value


def _is_object(item, path: str, errors: list) -> bool:
    if not isinstance(item, dict):
        errors.append({"field": path or "body", "message": "a JSON object"})
        return False
    return True


def _unknown(item: dict, keys: tuple[str, ...], path: str, errors: list) -> None:
    errors.extend({"field": _at(path, key), "message": "unknown field"}
                  for key in item if key not in keys)


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
