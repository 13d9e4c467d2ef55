"""CRM rules: customer segments and the other enumerations of a support case, customer checks."""

from __future__ import annotations

import re
from enum import StrEnum

from .access import Actor
from .errors import ValidationFailed
from .states import Role


class Segment(StrEnum):
    PERSONAS = "personas"
    PYME = "pyme"
    EMPRESAS = "empresas"
    CORPORATIVO = "corporativo"


class Sensitivity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Channel(StrEnum):
    EMAIL = "email"
    CHAT = "chat"
    PHONE = "phone"
    PORTAL = "portal"


class Impact(StrEnum):
    ONE_USER = "one_user"
    SEVERAL_USERS = "several_users"
    WHOLE_SERVICE = "whole_service"


CUSTOMER_FIELDS = ("id", "name", "segment", "value_rank", "sensitivity", "n1_agent",
                   "account_manager", "email")
REQUIRED_FIELDS = ("id", "name", "segment", "value_rank", "sensitivity")

_NIT = re.compile(r"\d+(-\d)?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,150}")
_READERS = frozenset({Role.AGENT, Role.OPERATOR, Role.ADMIN})


def can_read_customers(actor: Actor) -> bool:
    """Agents, operators and admins read customers and their cases."""
    return actor.role in _READERS


def validate_customer(fields: dict, partial: bool) -> dict:
    """The normalized values of `fields`, or ValidationFailed naming every bad field.

    `partial` (a patch) checks only the given fields; otherwise the required ones must be there.
    Optional fields given as None or blank become None."""
    errors = [{"field": name, "message": "unknown field"}
              for name in sorted(set(fields) - set(CUSTOMER_FIELDS))]
    clean = {}
    for name in CUSTOMER_FIELDS:
        if not partial and name in REQUIRED_FIELDS and _blank(fields.get(name)):
            errors.append({"field": name, "message": "required"})
        elif name in fields:
            try:
                clean[name] = _CHECKS[name](fields[name])
            except ValueError as exc:
                errors.append({"field": name, "message": str(exc)})
    if errors:
        raise ValidationFailed("invalid customer", errors)
    return clean


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value, label: str = "a string") -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be {label}")
    return value.strip()


def _nit(value) -> str:
    """Digits with an optional check digit after '-'; thousands dots are dropped."""
    nit = _text(value).replace(".", "").replace(" ", "")
    if not (5 <= len(nit) <= 20 and _NIT.fullmatch(nit)):
        raise ValueError("a NIT: 5-20 characters, digits with an optional '-' check digit")
    return nit


def _name(value) -> str:
    name = _text(value)
    if not name or len(name) > 200:
        raise ValueError("1-200 characters")
    return name


def _choice(enum: type[StrEnum]):
    def check(value) -> str:
        text = _text(value).lower()
        if text not in {member.value for member in enum}:
            raise ValueError(f"one of {', '.join(member.value for member in enum)}")
        return text
    return check


def _rank(value) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ValueError("a whole number from 1 to 100")
    return value


def _username(value) -> str | None:
    if _blank(value):
        return None
    username = _text(value)
    if not _USERNAME.fullmatch(username):
        raise ValueError("a username: 1-150 letters, digits, . - _ @")
    return username


def _email(value) -> str | None:
    if _blank(value):
        return None
    email = _text(value)
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise ValueError("an email address like name@example.com")
    return email


_CHECKS = {
    "id": _nit,
    "name": _name,
    "segment": _choice(Segment),
    "value_rank": _rank,
    "sensitivity": _choice(Sensitivity),
    "n1_agent": _username,
    "account_manager": _username,
    "email": _email,
}
