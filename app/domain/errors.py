"""Domain errors. The API maps each to an HTTP status in one handler; services only raise these."""

from __future__ import annotations


class DomainError(Exception):
    """Base error. `errors` is a list of dicts naming the field or BPMN element at fault."""

    code = "error"

    def __init__(self, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class ValidationFailed(DomainError):
    code = "validation_failed"


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Forbidden(DomainError):
    code = "forbidden"
