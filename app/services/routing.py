"""Which teams handle a product: the support_case process's `routing` decision, as deployed."""

from __future__ import annotations

from app.domain.errors import NotFound, ValidationFailed

from .instances import latest_definition, process_spec
from .processes import SUPPORT_PROCESS


def groups_for(ctx, products: list[str]) -> dict[str, dict]:
    """{product: {"n2_group", "n3_group"}} from the latest deployed routing table."""
    with ctx.read() as session:
        try:
            definition = latest_definition(ctx, session, SUPPORT_PROCESS)
        except ValidationFailed:
            return {}
        pspec = process_spec(ctx, definition)
    try:
        return {name: _route(ctx, pspec, name) for name in products}
    except NotFound:
        return {}


def _route(ctx, pspec, product: str) -> dict:
    result = ctx.engine.decide(pspec, "routing", {"product": product})
    return {"n2_group": result.get("n2_group"), "n3_group": result.get("n3_group")}
