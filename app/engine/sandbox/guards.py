"""Size guards: the operators and builtins scripts use, each refusing before it starts a
result too large to build (one long call into C cannot be interrupted)."""

from __future__ import annotations

import math
import operator
import re
from functools import partial
from itertools import compress, repeat

from RestrictedPython import Guards

from .limits import MAX_INT_BITS, MAX_ITEMS, MAX_POW_MOD_BITS, MAX_SORTED, MAX_TEXT_ITEMS
from .violations import _deny, _too_large

_SEQUENCES = (str, bytes, bytearray, list, tuple)
_CONTAINERS = frozenset({list, tuple, dict, set, frozenset, type({}.keys()), type({}.values()),
                         type({}.items())})
_TEXT = frozenset({str, bytes})


def _weight(obj, limit: int, per_item: int = 1, text: bool = False) -> int:
    """Items of container `obj` and of the containers nested in it (`per_item` each; a
    container reached twice counts twice, as str() or json would write it twice); with `text`,
    also the characters of strings and the digits of ints. Stops as soon as it passes `limit`.
    """
    total, stack = 0, [obj]
    while stack:
        item = stack.pop()
        total += per_item * len(item)
        if total > limit:
            break
        for part in (item.keys(), item.values()) if type(item) is dict else (item,):
            stack.extend(compress(part, map(_CONTAINERS.__contains__, map(type, part))))
            if text:
                total += sum(map(len, compress(part, map(_TEXT.__contains__, map(type, part)))))
                ints = compress(part, map(operator.is_, map(type, part), repeat(int)))
                total += sum(map(int.bit_length, ints)) * 3 // 10
        if total > limit:
            break
    return total


def _text_weight(value) -> int:
    """About how many characters str(value) has."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value)
    if kind is int:
        return value.bit_length() * 3 // 10 + 2
    if kind in _CONTAINERS:
        return _weight(value, MAX_ITEMS, 10, True)
    return 64


def _check_text(value) -> None:
    """Refuse writing out a container with too many elements (or too much text) as a string."""
    if type(value) in _CONTAINERS and _weight(value, MAX_ITEMS, 10, True) > MAX_ITEMS:
        raise _deny(f"value too large to write as text (more than about {MAX_TEXT_ITEMS} "
                    f"elements or {MAX_ITEMS} characters)")


def _checked_text(text):
    if len(text) > MAX_ITEMS:
        raise _too_large("text")
    return text


def _add(a, b, op=operator.add):
    if isinstance(a, _SEQUENCES):
        size = len(b) if isinstance(b, _SEQUENCES) else 0
        if op is operator.iadd and type(a) is list and not size:  # list += any iterable
            size = operator.length_hint(b)
        if len(a) + size > MAX_ITEMS:
            raise _too_large()
    return op(a, b)


def _mul(a, b, op=operator.mul):
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise _deny("integer result too large")
    else:
        seq, count = (a, b) if isinstance(a, _SEQUENCES) else (b, a)
        if isinstance(seq, _SEQUENCES) and isinstance(count, int) and count > 0:
            if len(seq) * count > MAX_ITEMS:
                raise _too_large()
            nested = count > 1 and type(seq) in (list, tuple)  # [[0] * 10**7] * 1000
            if nested and count * _weight(seq, MAX_ITEMS // count) > MAX_ITEMS:
                raise _too_large("nested list")
    return op(a, b)


def _pow(base, exp, mod=None):
    ints = isinstance(base, int) and isinstance(exp, int)
    if mod is not None:
        if ints and isinstance(mod, int) and max(
                abs(exp).bit_length(), abs(mod).bit_length()) > MAX_POW_MOD_BITS:
            raise _deny(f"pow() with a modulus takes numbers of at most {MAX_POW_MOD_BITS} bits")
        return pow(base, exp, mod)
    if ints and exp > 0 and abs(base) > 1 and exp * math.log2(abs(base)) > MAX_INT_BITS:
        raise _deny("integer result too large")
    return base**exp


def _lshift(a, b):
    if isinstance(a, int) and isinstance(b, int) and a and a.bit_length() + b > MAX_INT_BITS:
        raise _deny("integer result too large")
    return a << b


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _mod(a, b):
    """`a % b`; on a str/bytes template, bounds the text printf-style formatting builds."""
    if type(a) is str or type(a) is bytes:
        template = a if type(a) is str else a.decode("latin-1")
        specs = _PERCENT_SPEC.findall(template)
        if specs:
            values = b if type(b) is tuple else (b,)
            numbers = [n for spec in specs for n in spec if n and n != "*"]
            if any(len(n) > 8 or int(n) > MAX_ITEMS for n in numbers):
                raise _deny("format width too large")
            if any("*" in spec for spec in specs) and any(
                    type(v) is int and v > MAX_ITEMS for v in values):
                raise _deny("format width too large")
            widest = max([_text_weight(v) for v in values] + [int(n) for n in numbers])
            if len(template) + len(specs) * widest > MAX_ITEMS:
                raise _too_large("formatted text")
    return a % b


_iadd, _imul = partial(_add, op=operator.iadd), partial(_mul, op=operator.imul)
_INPLACE = {  # for `obj[key] op= value`
    "+=": _iadd, "-=": operator.isub, "*=": _imul, "/=": operator.itruediv, "%=": _mod,
    "//=": operator.ifloordiv, "**=": _pow, "<<=": _lshift, ">>=": operator.irshift,
    "&=": operator.iand, "|=": operator.ior, "^=": operator.ixor, "@=": operator.imatmul}


def _augitem(obj, key, op: str, value) -> None:
    """`obj[key] op= value` (only dicts and lists accept item writes)."""
    Guards.full_write_guard(obj)[key] = _INPLACE[op](obj[key], value)


def _range(*args) -> range:
    result = range(*args)
    if len(result) > MAX_ITEMS:
        raise _deny(f"range too large (more than {MAX_ITEMS} items)")
    return result


def _iter(obj, *sentinel):
    if sentinel:
        raise _deny("iter(callable, sentinel) is not allowed in scripts")
    return iter(obj)


def _sorted(iterable, /, *, key=None, reverse=False) -> list:
    if operator.length_hint(iterable) > MAX_SORTED:
        raise _deny(f"sorted() of more than {MAX_SORTED} items")
    items = list(iterable)
    if len(items) > MAX_SORTED:
        raise _deny(f"sorted() of more than {MAX_SORTED} items")
    items.sort(key=key, reverse=reverse)
    return items


def _make_str(*args, **kwargs) -> str:
    if args:
        _check_text(args[0])
    return _checked_text(str(*args, **kwargs))


def _repr(value) -> str:
    _check_text(value)
    return _checked_text(repr(value))


def _ascii(value) -> str:
    _check_text(value)
    return _checked_text(ascii(value))


def _make_int(*args, **kwargs) -> int:
    return _checked_int(int(*args, **kwargs))


def _checked_int(value: int) -> int:
    if value.bit_length() > MAX_INT_BITS:
        raise _deny("integer result too large")
    return value


def _from_bytes(*args, **kwargs) -> int:
    return _checked_int(int.from_bytes(*args, **kwargs))


class _GuardedType(type):
    """Metaclass of the `str` and `int` scripts see: isinstance/issubclass answer as for the
    real type and attributes are those of the real type (see `_getattr`); calling it builds
    the value with a size check."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, cls.real)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, cls.real)

    def __call__(cls, *args, **kwargs):
        return cls.build(*args, **kwargs)

    def __repr__(cls):
        return repr(cls.real)


def _guarded_type(real: type, build) -> _GuardedType:
    return _GuardedType(real.__name__, (), {"real": real, "build": staticmethod(build)})
