"""Is the database reachable, and Redis when one is configured?"""

from __future__ import annotations

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError


def check(ctx) -> dict:
    return {"database": _database(ctx), "redis": _redis(ctx)}


def _database(ctx) -> str:
    try:
        with ctx.unit() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return "unavailable"
    return "ok"


def _redis(ctx) -> str:
    if ctx.settings.embedded:
        return "embedded"
    try:
        Redis.from_url(ctx.settings.redis_url, socket_timeout=2).ping()
    except RedisError:
        return "unavailable"
    return "ok"
