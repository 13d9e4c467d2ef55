"""The demo team: its users and groups, created once and reused, and their API tokens."""

from __future__ import annotations

from collections import Counter
from contextlib import suppress

from app.domain.errors import Conflict
from app.services import users

from .mix import MANAGERS, PASSWORD, POSVENTA, SEGMENTS


def team_spec(catalog: dict) -> dict[str, tuple[str, list[str]]]:
    """username: (role, groups): an operator, post-sale agents, account managers, one agent per
    segment strategy group, 2 agents per N2 group and 1 per N3 group (2 when it serves several
    products)."""
    spec = {"supervisor": ("operator", [])}
    spec |= {f"posventa{i}": ("agent", ["posventa"]) for i in range(1, POSVENTA + 1)}
    spec |= {f"gerente{i}": ("agent", ["gerentes_cuenta"]) for i in range(1, MANAGERS + 1)}
    spec |= {f"estrategia_{s}": ("agent", [f"estrategia_{s}"]) for s in SEGMENTS}
    for group in sorted({item["n2_group"] for item in catalog.values()}):
        spec |= {f"{group}_{i}": ("agent", [group]) for i in (1, 2)}
    for group, products in sorted(Counter(i["n3_group"] for i in catalog.values()).items()):
        spec |= {f"{group}_{i}": ("agent", [group]) for i in range(1, min(products, 2) + 1)}
    return spec


def _tokens(ctx, spec: dict) -> dict[str, str]:
    for username, (role, groups) in spec.items():
        with suppress(Conflict):  # a second run reuses the team
            users.create_user(ctx, username, PASSWORD, role, groups)
    return {username: users.create_token(ctx, username) for username in spec}
