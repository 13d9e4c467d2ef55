"""Bearer tokens: the actor of the current request."""

from __future__ import annotations

from flask import current_app, g, request

from app.domain.access import Actor
from app.domain.errors import Unauthenticated
from app.services import users


def context():
    return current_app.extensions["clientconnect"]


def actor() -> Actor:
    if "actor" not in g:
        g.actor = users.actor_for_token(context(), _bearer_token())
    return g.actor


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an API token: 'Authorization: Bearer <token>'")
    return token.strip()
