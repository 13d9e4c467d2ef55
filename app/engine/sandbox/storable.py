"""What task data may hold: after a script every variable must be JSON-safe (STORABLE)."""

from __future__ import annotations

import math
import operator
from datetime import date, datetime
from itertools import compress, repeat

from .guards import _CONTAINERS, _weight
from .limits import _STORABLE_INT_BITS, MAX_DEPTH, MAX_ITEMS, MAX_TEXT_ITEMS, STORABLE
from .violations import SandboxViolation

_ATOMS = frozenset({type(None), bool, str, datetime, date})
_FLAT = _ATOMS | {int, float}


def unstorable(values: dict) -> dict:
    """{name: why} of the entries of `values` that task data cannot hold (see STORABLE).

    Their size together is bounded like str(): about MAX_ITEMS characters, each list/dict
    element counting 10, so the check itself stays fast (at most ~MAX_TEXT_ITEMS elements).
    """
    budget, problems = [MAX_ITEMS], {}
    for name, value in values.items():
        problem = _problem(value, str(name), 0, budget, set())
        if problem:
            problems[name] = problem
    return problems


def check_storable(values: dict) -> None:
    """Raise SandboxViolation naming the first entry of `values` task data cannot hold."""
    problems = unstorable(values)
    if problems:
        raise SandboxViolation(next(iter(problems.values())))


def _problem(value, path: str, depth: int, budget: list, active: set) -> str | None:
    kind = type(value)
    if kind in _ATOMS:
        if kind is str:
            budget[0] -= len(value)
            if budget[0] < 0:
                return _too_much(path)
        return None
    if kind is int:
        if value.bit_length() > _STORABLE_INT_BITS:
            return f"task data cannot hold {path}: an integer of more than 4,300 digits"
        return None
    if kind is float:
        return None if math.isfinite(value) else (
            f"task data cannot hold {path} = {value!r}: only finite numbers can be stored")
    if kind is list or kind is tuple or kind is dict:
        return _container_problem(value, path, depth, budget, active)
    return f"task data cannot hold {path} (a {kind.__name__}): store only {STORABLE}"


def _container_problem(value, path: str, depth: int, budget: list, active: set) -> str | None:
    if depth >= MAX_DEPTH:
        return f"task data cannot hold {path}: nested more than {MAX_DEPTH} levels deep"
    if id(value) in active:
        return f"task data cannot hold {path}: it contains itself"
    budget[0] -= 10 * len(value)
    if budget[0] < 0:
        return _too_much(path)
    if type(value) is dict:
        if not set(map(type, value)) <= {str}:
            key = next(k for k in value if type(k) is not str)
            return (f"task data cannot hold {path}: its key {_brief(key, 80)} is a "
                    f"{type(key).__name__}; dict keys must be str")
        items, values = value.items(), value.values()
    else:
        items, values = enumerate(value), value
    if _flat_ok(values, budget):
        return None
    active.add(id(value))
    try:
        for key, item in items:
            problem = _problem(item, f"{path}[{key!r:.60}]", depth + 1, budget, active)
            if problem:
                return problem
    finally:
        active.discard(id(value))
    return None


def _too_much(path: str) -> str:
    return (f"task data too large at {path} (more than about {MAX_TEXT_ITEMS} elements or "
            f"{MAX_ITEMS} characters in all)")


def _flat_ok(values, budget: list) -> bool:
    """True (and the budget charged) when `values` are all plain storable scalars."""
    kinds = set(map(type, values))
    if not kinds <= _FLAT:
        return False
    if int in kinds and max(map(int.bit_length, _of_type(values, int))) > _STORABLE_INT_BITS:
        return False
    if float in kinds and not all(map(math.isfinite, _of_type(values, float))):
        return False
    if str in kinds:
        budget[0] -= sum(map(len, _of_type(values, str)))
        if budget[0] < 0:
            return False
    return True


def _of_type(values, kind: type):
    return compress(values, map(operator.is_, map(type, values), repeat(kind)))


def _brief(value, limit: int = 2000) -> str:
    """str(value) cut to `limit` characters, without writing out a huge container first."""
    if type(value) in _CONTAINERS and _weight(value, limit * 10, 1, True) > limit * 10:
        return f"<{type(value).__name__} of {len(value)} items>"
    try:
        text = value if isinstance(value, str) else str(value)
    except ValueError:  # an int over the int/str digit limit
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."
