"""RestrictedPython sandbox for BPMN scripts, expressions and DMN entries.

Scripts run with guarded attribute access and a per-thread time limit checked on every line of
sandboxed code. The time limit cannot interrupt one long call into C, so every builtin that
could run one is bounded before it starts:

- sizes: `+ * ** << %`, `range`, `sorted`, f-strings, `str.format`, format widths and the
  str/bytes methods that grow text (`replace`, `join`, `translate`, `expandtabs`, `ljust`...)
  refuse results over `MAX_ITEMS` items (`*` counts the items of nested lists too);
  `str()`/`repr()` of containers refuse more than about `MAX_ITEMS // 10` elements in total;
  `int()` and every integer operator refuse results over `MAX_INT_BITS` bits (under Python's
  4,300-digit limit, so any integer a script makes can be stored); `iter(callable, sentinel)`
  (an endless C loop) is refused.
- stored data: after a script, every variable must be JSON-safe: None, bool, int, finite
  float, str, list/tuple, dict with str keys, date or datetime. Anything else (a set, a
  timedelta, a generator, a function inside a dict...) is removed from the task data and the
  script fails with a `SandboxViolation` naming the variable and its type. `Decimal` is not
  offered to scripts (a Decimal cannot be stored and `int(Decimal('9e999999'))` is a C loop).
"""

from __future__ import annotations

import _string
import ast
import logging
import math
import operator
import re
import string
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache, partial
from itertools import compress, repeat

from RestrictedPython import Guards, compile_restricted_eval, compile_restricted_exec
from RestrictedPython import transformer as rp
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

logger = logging.getLogger(__name__)

FILENAME = "<string>"  # SpiffWorkflow looks for this name to report script line numbers
MAX_ITEMS = 10_000_000  # longest str/list/tuple/range (and format width) a script may build
MAX_TEXT_ITEMS = MAX_ITEMS // 10  # most elements str()/repr() may write out, nested included
MAX_SORTED = MAX_ITEMS // 10  # most items sorted() may sort
MAX_INT_BITS = 14_000  # about 4,200 decimal digits: under Python's 4,300-digit int/str limit
MAX_POW_MOD_BITS = 2_048  # exponent and modulus of pow(a, e, m): 2048 bits take ~30 ms
MAX_DEPTH = 64  # deepest nesting of lists/dicts a variable may hold
_STORABLE_INT_BITS = 14_280  # < 4,300 digits: an int json can still write
STORABLE = "None, bool, int, float, str, list, dict with str keys, date or datetime"

_SEQUENCES = (str, bytes, bytearray, list, tuple)
_CONTAINERS = frozenset({list, tuple, dict, set, frozenset, type({}.keys()), type({}.values()),
                         type({}.items())})
_TEXT = frozenset({str, bytes})
_SIZED_METHODS = frozenset({"to_bytes"})
_MISSING = object()
_BLOCKED = frozenset({
    "open", "eval", "exec", "compile", "globals", "locals", "vars", "dir", "type", "input",
    "breakpoint", "help", "exit", "quit", "memoryview", "object", "super", "format", "setattr",
    "delattr", "classmethod", "staticmethod", "property", "bytes", "bytearray", "__import__",
})


class SandboxViolation(Exception):
    """A script tried a blocked operation."""


class ScriptTimeout(SandboxViolation):
    """A script ran past its time limit."""


class _State(threading.local):
    violation: SandboxViolation | None = None  # first violation of the running script
    deadline = float("inf")


_state = _State()


def _deny(message: str, cls: type[SandboxViolation] = SandboxViolation) -> SandboxViolation:
    """Record a violation so that except/finally blocks of the script re-raise it."""
    exc = cls(message)
    if _state.violation is None:
        _state.violation = exc
    return exc


def _too_large(what: str = "value") -> SandboxViolation:
    return _deny(f"{what} too large (more than {MAX_ITEMS} items)")


def _reraise() -> None:
    """Injected at the top of every except/finally block: violations cannot be swallowed."""
    if _state.violation is not None:
        raise _state.violation
    if time.monotonic() > _state.deadline:
        raise _deny("script exceeded its time limit", ScriptTimeout)


# --- sizes ------------------------------------------------------------------------------


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
_GUARDED_INPLACE = {"+=": "_iadd_", "*=": "_imul_", "**=": "_pow_", "<<=": "_lshift_",
                    "%=": "_mod_"}
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


# --- attributes -------------------------------------------------------------------------


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


class _Policy(rp.RestrictingNodeTransformer):
    """RestrictedPython's policy plus our own rules and guard rewrites."""

    _BINOPS = {ast.Add: "_add_", ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_",
               ast.Mod: "_mod_"}

    def _call(self, name: str, args: list, node: ast.AST) -> ast.Call:
        call = ast.Call(ast.Name(name, ast.Load()), args, [])
        rp.copy_locations(call, node)
        return call

    _refuse = rp.RestrictingNodeTransformer.not_allowed  # "<node> statements are not allowed."
    visit_Import = visit_ImportFrom = visit_ClassDef = visit_With = _refuse

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id in _BLOCKED:
            self.error(node, f'Calling "{node.func.id}" is not allowed.')
        return super().visit_Call(node)

    def visit_BinOp(self, node):
        node = self.node_contents_visit(node)
        name = self._BINOPS.get(type(node.op))
        return self._call(name, [node.left, node.right], node) if name else node

    def visit_AugAssign(self, node):
        target, op = node.target, rp.IOPERATOR_TO_STR[type(node.op)]
        if isinstance(target, ast.Subscript):
            args = [self.visit(target.value), self.visit(target.slice), ast.Constant(op)]
            new = ast.Expr(self._call("_augitem_", [*args, self.visit(node.value)], node))
        elif isinstance(target, ast.Name) and op in _GUARDED_INPLACE:
            self.check_name(target, target.id)
            args = [ast.Name(target.id, ast.Load()), self.visit(node.value)]
            call = self._call(_GUARDED_INPLACE[op], args, node)
            new = ast.Assign([ast.Name(target.id, ast.Store())], call)
        elif isinstance(target, ast.Name):
            return self.node_contents_visit(node)  # a plain name: no guard needed
        else:
            return super().visit_AugAssign(node)  # attributes: refused by RestrictedPython
        rp.copy_locations(new, node)
        return new

    def visit_While(self, node):
        """Start each iteration with a real instruction: `while 1: pass` has no line events."""
        node = self.node_contents_visit(node)
        marker = ast.Expr(ast.Name("_loop_", ast.Load()))
        rp.copy_locations(marker, node.body[0])
        node.body.insert(0, marker)
        return node

    def visit_Try(self, node):
        node = self.node_contents_visit(node)
        for body in [h.body for h in node.handlers] + [node.finalbody]:
            if body:
                guard = ast.Expr(self._call("_reraise_", [], body[0]))
                rp.copy_locations(guard, body[0])
                body.insert(0, guard)
        return node

    def visit_FormattedValue(self, node):
        """`{value!r:spec}` -> `_format_value_(value, spec, conversion)` (a str)."""
        node = self.node_contents_visit(node)
        spec = node.format_spec if node.format_spec is not None else ast.Constant("")
        return self._call("_format_value_", [node.value, spec, ast.Constant(node.conversion)],
                          node)

    def visit_JoinedStr(self, node):
        """`f'a{b}'` -> `_fstring_(('a', _format_value_(b, '', -1)))`: the length is checked
        before the parts are joined."""
        node = self.node_contents_visit(node)
        parts = ast.Tuple(list(node.values), ast.Load())
        rp.copy_locations(parts, node)
        return self._call("_fstring_", [parts], node)


@lru_cache(maxsize=4096)
def _compile(source: str, mode: str):
    """(code, policy errors) of an "exec" or "eval" source; raises SyntaxError."""
    compiler = {"eval": compile_restricted_eval, "exec": compile_restricted_exec}[mode]
    tree = ast.parse(source.strip() if mode == "eval" else source, FILENAME, mode)
    result = compiler(tree, FILENAME, policy=_Policy)
    return result.code, tuple(result.errors)


def check_source(source: str, mode: str) -> list[str]:
    """Compile errors of a script ("exec") or expression ("eval"); empty when acceptable."""
    try:
        return list(_compile(source, mode)[1])
    except SyntaxError as exc:
        return [f"Line {exc.lineno}: SyntaxError: {exc.msg}"]


def _run(source: str, mode: str, namespace: dict, timeout: float):
    """Run restricted code under a deadline checked on each line of sandboxed frames."""
    code, errors = _compile(source, mode)
    if errors:
        raise SandboxViolation("; ".join(errors))
    deadline = time.monotonic() + timeout

    def local(frame, event, arg, _now=time.monotonic):
        if event == "line" and _now() > deadline:
            raise _deny("script exceeded its time limit", ScriptTimeout)
        return local

    def trace(frame, event, arg):
        return local if frame.f_code.co_filename == FILENAME else None

    saved, previous = (_state.violation, _state.deadline), sys.gettrace()
    _state.violation, _state.deadline = None, deadline
    sys.settrace(trace)
    try:
        result = eval(code, namespace)
        if _state.violation is not None:  # refused, then swallowed by a C function
            raise _state.violation
        return result
    finally:
        sys.settrace(previous)
        _state.violation, _state.deadline = saved


# --- what task data may hold ----------------------------------------------------------

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


class SandboxedEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluates expressions and runs scripts with RestrictedPython and a time limit."""

    def __init__(self, environment_globals: dict | None = None, timeout: float = 1.0):
        super().__init__(environment_globals)
        self.timeout = timeout

    def evaluate(self, expression, context, external_context=None):
        namespace = {**self.globals, **(external_context or {}), **context, **_RESERVED}
        return _run(expression, "eval", namespace, self.timeout)

    def execute(self, script, context, external_context=None):
        external_context = external_context or {}
        clash = (set(self.globals) | set(external_context)) & set(context)
        if clash:
            raise ValueError(f"Task data overwrites predefined names, please rename: {clash}")
        context.update({**self.globals, **external_context, **_RESERVED})
        problems = {}
        try:
            _run(script, "exec", context, self.timeout)
        finally:
            for key in list(context):  # drop guards, globals, external context and functions
                if (key in _RESERVED or key in self.globals or key in external_context
                        or callable(context[key])):
                    del context[key]
            problems = unstorable(context)
            for key in problems:  # never left in the task data, even when the script failed
                del context[key]
        if problems:
            raise SandboxViolation(next(iter(problems.values())))
        return True

    def call_service(self, context, **kwargs):
        raise NotImplementedError("service tasks are executed asynchronously")


class SandboxedScriptEngine(PythonScriptEngine):
    """PythonScriptEngine on a SandboxedEnvironment; wrapped errors keep their cause."""

    def __init__(self, timeout: float = 1.0, environment_globals: dict | None = None):
        super().__init__(environment=SandboxedEnvironment(environment_globals, timeout))

    def validate(self, expression):
        errors = check_source(expression, "exec")
        if errors:
            raise SyntaxError("; ".join(errors))

    def evaluate(self, task, expression, external_context=None):
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SpiffWorkflowException as exc:
            exc.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as exc:
            raise _wrap(task, exc, f"Error evaluating expression '{expression}'") from exc

    def create_task_exec_exception(self, task, script, err):
        if isinstance(err, SpiffWorkflowException):
            return super().create_task_exec_exception(task, script, err)
        line_number, error_line = self.get_error_line_number_and_content(script, err)
        detail = f"{type(err).__name__}:{_brief(err.args[0])}" if err.args else type(err).__name__
        return _wrap(task, err, detail, line_number=line_number, error_line=error_line)


def _wrap(task, err: Exception, message: str, **details) -> WorkflowTaskException:
    """A WorkflowTaskException whose cause (also `.exception`) is the original error."""
    wrapped = WorkflowTaskException(message, task=task, exception=err, **details)
    wrapped.exception, wrapped.__cause__ = err, err
    return wrapped
