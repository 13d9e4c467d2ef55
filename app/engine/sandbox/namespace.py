"""What scripts run with: the builtins they may call and the reserved names the rewritten
code refers to."""

from __future__ import annotations

import logging
import operator
from datetime import date, datetime, timedelta, timezone
from functools import partial

from RestrictedPython import Guards

from .attributes import _format_value, _fstring, _getattr
from .guards import (
    _add,
    _ascii,
    _augitem,
    _check_text,
    _guarded_type,
    _iadd,
    _imul,
    _iter,
    _lshift,
    _make_int,
    _make_str,
    _mod,
    _mul,
    _pow,
    _range,
    _repr,
    _sorted,
)
from .violations import _deny, _reraise

logger = logging.getLogger("app.engine.sandbox")  # script print() logs under the package

_MISSING = object()
_BLOCKED = frozenset({
    "open", "eval", "exec", "compile", "globals", "locals", "vars", "dir", "type", "input",
    "breakpoint", "help", "exit", "quit", "memoryview", "object", "super", "format", "setattr",
    "delattr", "classmethod", "staticmethod", "property", "bytes", "bytearray", "__import__",
})


def _blocked(name: str, *args, **kwargs):
    """Stand-in for a builtin that scripts may not use."""
    raise _deny(f"{name}() is not allowed in scripts")


class _PrintSink:
    """Replaces RestrictedPython's PrintCollector: print() goes to the debug log."""

    def _call_print(self, *objects, **kwargs) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            _check_text(objects)
            logger.debug("script print: %s", objects)

    def __call__(self) -> str:  # the `printed` variable
        return ""


_PRINT = _PrintSink()
_UNSAFE = {"__build_class__", "_getattr_", "setattr", "delattr", "pow", "range",
           "BaseException", "SystemExit", "KeyboardInterrupt", "GeneratorExit"}
BUILTINS = {k: v for k, v in Guards.safe_builtins.items() if k not in _UNSAFE}
BUILTINS.update({name: partial(_blocked, name) for name in _BLOCKED})
BUILTINS.update(
    min=min, max=max, sum=sum, sorted=_sorted, reversed=reversed, enumerate=enumerate, zip=zip,
    any=any, all=all, map=map, filter=filter, iter=_iter, next=next, list=list, dict=dict,
    set=set, frozenset=frozenset, tuple=tuple, range=_range, pow=_pow, getattr=_getattr,
    hasattr=lambda obj, name: _getattr(obj, name, _MISSING) is not _MISSING,
    str=_guarded_type(str, _make_str), int=_guarded_type(int, _make_int), repr=_repr,
    ascii=_ascii, datetime=datetime, date=date, timedelta=timedelta, timezone=timezone,
)
_RESERVED = {  # names the rewritten code refers to; always set last so data cannot shadow them
    "__builtins__": BUILTINS, "_getattr_": _getattr, "_getitem_": operator.getitem,
    "_getiter_": iter, "_write_": Guards.full_write_guard, "_apply_": lambda f, *a, **k: f(*a, **k),
    "_unpack_sequence_": Guards.guarded_unpack_sequence, "_print_": lambda *a: _PRINT,
    "_iter_unpack_sequence_": Guards.guarded_iter_unpack_sequence, "_print": _PRINT,
    "_add_": _add, "_mul_": _mul, "_pow_": _pow, "_lshift_": _lshift, "_iadd_": _iadd,
    "_imul_": _imul, "_augitem_": _augitem, "_reraise_": _reraise, "_loop_": None,
    "_format_value_": _format_value, "_fstring_": _fstring, "_mod_": _mod,
}
