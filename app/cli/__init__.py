"""The `clientconnect` command: serve, worker, ticker, deploy, lint, users, tokens, db.

One module per command group; importing them registers their commands on `main`.
"""

from __future__ import annotations

from . import (  # noqa: F401  (registers the commands on main)
    background,
    customers,
    db,
    demo,
    deploy,
    reference,
    serve,
    users,
)
from .group import main

__all__ = ["main"]
