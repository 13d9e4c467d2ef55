"""Attribute access of scripts: the getattr guard, the size-checked str/bytes methods it
hands out, and the bounded formatting behind str.format and f-strings."""

from __future__ import annotations

import _string
import operator
import re
import string
from functools import partial
from itertools import compress

from RestrictedPython import transformer as rp

from .guards import (
    _SEQUENCES,
    _TEXT,
    _ascii,
    _check_text,
    _from_bytes,
    _GuardedType,
    _make_str,
    _repr,
)
from .limits import MAX_ITEMS
from .violations import _deny, _too_large

_SIZED_METHODS = frozenset({"to_bytes"})


def _getattr(obj, name, *default):
    """getattr refusing private/introspection attributes; str.format gets the safe formatter;
    methods that could build huge values are wrapped with a size check."""
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    if name.startswith("_") or name in rp.INSPECT_ATTRIBUTES or name == "mro":
        raise _deny(f"access to attribute {name!r} is not allowed")
    if type(obj) is _GuardedType:
        obj = obj.real
    if type(obj) in _TEXT or obj is str or obj is bytes:
        return _text_attribute(obj, name, default)
    if type(obj) is list and name == "extend":
        return partial(_extend, obj)
    if obj is int and name == "from_bytes":
        return _from_bytes
    if name in _SIZED_METHODS:
        return partial(_sized_call, getattr(obj, name))
    if name in ("format", "format_map") and isinstance(obj, type) and issubclass(
            obj, string.Formatter):
        raise _deny(f"str.{name} is only allowed on string values")
    return getattr(obj, name, *default)


def _text_attribute(obj, name: str, default: tuple):
    """An attribute of a str/bytes value or of the str/bytes type, size-checked."""
    if name in ("format", "format_map") and type(obj) is str:
        if name == "format":
            return lambda *args, **kwargs: _SafeFormatter().vformat(obj, args, kwargs)
        return lambda mapping: _SafeFormatter().vformat(obj, (), mapping)
    if name in ("format", "format_map") and obj is str:
        raise _deny(f"str.{name} is only allowed on string values")
    value = getattr(obj, name, *default)
    if not callable(value) or (default and value is default[0]):
        return value
    guard = _TEXT_GUARDS.get(name)
    if guard is None:
        return partial(_checked_call, value)
    if isinstance(obj, type):  # str.replace(text, ...): check the bound method of `text`
        return partial(_unbound_call, obj, name, guard)
    return partial(guard, value)


def _unbound_call(cls, name, guard, value, *args, **kwargs):
    if not isinstance(value, cls):
        raise TypeError(f"{cls.__name__}.{name}() needs a {cls.__name__} value")
    return guard(getattr(value, name), *args, **kwargs)


def _checked_call(method, *args, **kwargs):
    """A str/bytes method whose result is at most a few times its input: checked after."""
    result = method(*args, **kwargs)
    if type(result) in _TEXT and len(result) > MAX_ITEMS:
        raise _too_large("text")
    return result


def _sized_call(method, *args, **kwargs):
    """Call a padding method (ljust, zfill, to_bytes...) refusing huge widths."""
    if any(isinstance(v, int) and v > MAX_ITEMS for v in (*args, *kwargs.values())):
        raise _too_large()
    return method(*args, **kwargs)


def _replace(method, old, new, *rest):
    text, count = method.__self__, rest[0] if rest else -1
    if isinstance(count, int) and isinstance(old, type(text)) and isinstance(new, type(text)):
        found = text.count(old) if count < 0 else min(count, text.count(old))
        if len(text) + found * (len(new) - len(old)) > MAX_ITEMS:
            raise _too_large("text")
    return method(old, new, *rest)


def _join(method, iterable):
    items = iterable if type(iterable) in (list, tuple) else list(iterable)
    parts = compress(items, map(_TEXT.__contains__, map(type, items)))
    if sum(map(len, parts)) + len(method.__self__) * max(len(items) - 1, 0) > MAX_ITEMS:
        raise _too_large("text")
    return method(items)


def _translate(method, table):
    values = table.values() if isinstance(table, dict) else table
    if isinstance(table, dict | list | tuple) and values:
        texts = compress(values, map(_TEXT.__contains__, map(type, values)))
        if len(method.__self__) * max(map(len, texts), default=1) > MAX_ITEMS:
            raise _too_large("text")
    return method(table)


def _expandtabs(method, tabsize=8):
    text = method.__self__
    if isinstance(tabsize, int) and tabsize > 1:
        tab = "\t" if type(text) is str else b"\t"
        if len(text) + text.count(tab) * (tabsize - 1) > MAX_ITEMS:
            raise _too_large("text")
    return method(tabsize)


def _extend(target: list, iterable) -> None:
    size = len(iterable) if isinstance(iterable, _SEQUENCES) else operator.length_hint(iterable)
    if len(target) + size > MAX_ITEMS:
        raise _too_large()
    target.extend(iterable)


_TEXT_GUARDS = {"replace": _replace, "join": _join, "translate": _translate,
                "expandtabs": _expandtabs, "ljust": _sized_call, "rjust": _sized_call,
                "center": _sized_call, "zfill": _sized_call}


def _check_spec(spec: str) -> str:
    """Refuse format widths/precisions that would build a huge string."""
    if any(len(n) > 8 or int(n) > MAX_ITEMS for n in re.findall(r"\d+", spec)):
        raise _deny("format width too large")
    return spec


class _SafeFormatter(string.Formatter):
    """str.format whose fields resolve attributes through the sandbox getattr and whose
    output is bounded (one instance per call: it counts what it wrote)."""

    def __init__(self):
        self.written = 0

    def get_field(self, field_name, args, kwargs):
        first, rest = _string.formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = _getattr(obj, key) if is_attr else obj[key]
        return obj, first

    def convert_field(self, value, conversion):
        _check_text(value)
        return super().convert_field(value, conversion)

    def format_field(self, value, format_spec):
        _check_text(value)
        text = format(value, _check_spec(format_spec))
        self.written += len(text)
        if self.written > MAX_ITEMS:
            raise _too_large("formatted text")
        return text


_CONVERSIONS = {ord("s"): _make_str, ord("r"): _repr, ord("a"): _ascii}


def _format_value(value, spec: str, conversion: int) -> str:
    """One f-string field, e.g. the `value!r:>10` of `f'{value!r:>10}'`."""
    if conversion != -1:
        value = _CONVERSIONS[conversion](value)
    else:
        _check_text(value)
    return format(value, _check_spec(spec) if spec else "")


def _fstring(parts: tuple) -> str:
    """An f-string: its literal parts and formatted fields, joined when not too long."""
    if sum(map(len, parts)) > MAX_ITEMS:
        raise _too_large("text")
    return "".join(parts)
