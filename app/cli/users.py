"""Users and API tokens: the `users` and `tokens` commands, and the demo users of the
embedded server."""

from __future__ import annotations

import click

from app.services import users as user_service
from app.services.context import Context

from .context import _close, _migrated_context, _settings
from .group import main

DEMO_PASSWORD = "demo1234"
DEMO_USERS = (
    ("ana", "agent", ("posventa", "sales")),
    ("bruno", "agent", ("managers",)),
    ("olga", "operator", ()),
    ("diego", "designer", ()),
    ("admin", "admin", ()),
)


@main.group("users")
def users_group() -> None:
    """Manage users."""


@users_group.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--role", required=True, help="agent, operator, designer or admin")
@click.option("--groups", default="", help="comma-separated group names")
@click.option("--email", default=None, help="where SLA warnings and escalations are sent")
def users_create(username: str, password: str, role: str, groups: str, email: str | None) -> None:
    ctx = _migrated_context(_settings())
    try:
        user = user_service.create_user(ctx, username, password, role, groups.split(","), email)
    finally:
        _close(ctx)
    click.echo(f"created {user['role']} {user['username']} "
               f"groups={','.join(user['groups']) or '-'}")


@main.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("create")
@click.argument("username")
def tokens_create(username: str) -> None:
    """Print a new API token for USERNAME (shown once: only its hash is stored)."""
    ctx = _migrated_context(_settings())
    try:
        click.echo(user_service.create_token(ctx, username))
    finally:
        _close(ctx)


def ensure_demo_users(ctx: Context) -> list[str]:
    """Create the demo users that do not exist yet; returns the created names."""
    from sqlalchemy import select

    from app.persistence.models import User

    with ctx.unit() as session:
        existing = set(session.scalars(select(User.username)))
    created = []
    for username, role, groups in DEMO_USERS:
        if username not in existing:
            user_service.create_user(ctx, username, DEMO_PASSWORD, role, list(groups))
            created.append(username)
    return created
