"""Users, their roles and groups, and API tokens (stored hashed)."""

from __future__ import annotations

import hashlib
import re
import secrets
from functools import lru_cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from app.domain.access import Actor
from app.domain.errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from app.domain.states import Role
from app.persistence.models import ApiToken, User


@lru_cache(maxsize=4)
def _hasher(profile: str) -> PasswordHasher:
    return PasswordHasher.from_parameters(getattr(profiles, profile))
TOKEN_PREFIX = "ccf_"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def create_user(ctx, username: str, password: str, role: str, groups: list[str],
                email: str | None = None) -> dict:
    _check_user(username, password, role, email)
    user = User(username=username,
                password_hash=_hasher(ctx.settings.password_profile).hash(password), role=role,
                groups=sorted({g.strip() for g in groups if g.strip()}), email=email or None)
    try:
        with ctx.unit() as session:
            session.add(user)
            session.flush()
            return user_item(user)
    except IntegrityError:
        raise Conflict(f"user {username} already exists") from None


def _check_user(username: str, password: str, role: str, email: str | None) -> None:
    errors = []
    if email and not _EMAIL.fullmatch(email):
        errors.append({"field": "email", "message": "not an e-mail address"})
    if not username or len(username) > 150 or not username.replace(".", "").replace("-", "") \
            .replace("_", "").replace("@", "").isalnum():
        errors.append({"field": "username", "message": "1-150 letters, digits, . - _ @"})
    if len(password) < 8:
        errors.append({"field": "password", "message": "at least 8 characters"})
    if role not in {r.value for r in Role}:
        errors.append({"field": "role", "message": f"one of {', '.join(r.value for r in Role)}"})
    if errors:
        raise ValidationFailed("invalid user", errors)


def user_item(user: User) -> dict:
    return {"id": user.id, "username": user.username, "role": user.role, "groups": user.groups,
            "email": user.email}


def create_token(ctx, username: str) -> str:
    """A new API token for `username`; only its hash is stored, so it is shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with ctx.unit() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"user {username} not found")
        session.add(ApiToken(user_id=user.id, token_hash=_digest(token)))
    return token


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_USERS, _TOKENS = User.__table__, ApiToken.__table__
_TOKEN_USER = select(_USERS.c.username, _USERS.c.role, _USERS.c.groups, _USERS.c.active) \
    .select_from(_USERS.join(_TOKENS, _TOKENS.c.user_id == _USERS.c.id)) \
    .where(_TOKENS.c.token_hash == bindparam("digest"))


def actor_for_token(ctx, token: str) -> Actor:
    """The actor of an API token. Known tokens are remembered for `caches.TOKEN_TTL_SECONDS`
    in this process (no statement per request): a revoked token, a deactivated user or
    new groups take effect within that time."""
    digest = _digest(token)
    actor = ctx.tokens.get(digest)
    if actor is not None:
        return actor
    with ctx.read() as session:
        user = session.connection().execute(_TOKEN_USER, {"digest": digest}).first()
    if user is None or not user.active:
        raise Unauthenticated("invalid or revoked API token")
    actor = _actor(user)
    ctx.tokens.put(digest, actor)
    return actor


def actor_for_password(ctx, username: str, password: str) -> Actor:
    with ctx.unit() as session:
        user = session.scalar(select(User).where(User.username == username))
    hasher = _hasher(ctx.settings.password_profile)
    if user is None or not user.active or not _verify(hasher, user.password_hash, password):
        raise Unauthenticated("wrong username or password")
    return _actor(user)


def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _actor(user: User) -> Actor:
    return Actor(user.username, Role(user.role), frozenset(user.groups or ()))
