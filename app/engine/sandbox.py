"""RestrictedPython sandbox for BPMN scripts, expressions and DMN entries.

Policy: no imports, classes, `with` or underscore names/attributes; guarded attribute access
(including str.format fields); size limits on `+ * ** <<`, range() and format widths; a
per-thread time limit enforced by a trace function limited to sandboxed frames.
"""

from __future__ import annotations

import _string
import ast
import logging
import operator
import re
import string
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache, partial

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
)
from RestrictedPython.transformer import (
    INSPECT_ATTRIBUTES,
    IOPERATOR_TO_STR,
    RestrictingNodeTransformer,
    copy_locations,
)
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

logger = logging.getLogger(__name__)

FILENAME = "<string>"  # SpiffWorkflow looks for this name to report script line numbers
MAX_ITEMS = 10_000_000  # longest str/list/tuple/range a script may build
MAX_INT_BITS = 33_220  # about 10,000 decimal digits
_SEQUENCES = (str, bytes, bytearray, list, tuple)
_BLOCKED = frozenset({
    "open", "eval", "exec", "compile", "globals", "locals", "vars", "dir", "type", "input",
    "breakpoint", "help", "exit", "quit", "memoryview", "object", "super", "format", "setattr",
    "delattr", "classmethod", "staticmethod", "property", "bytes", "bytearray", "__import__",
})


class SandboxViolation(Exception):
    """A script tried a blocked operation."""


class ScriptTimeout(SandboxViolation):
    """A script ran past its time limit."""


_state = threading.local()  # per thread: .violation (first one of the run) and .deadline


def _deny(message: str, cls: type[SandboxViolation] = SandboxViolation) -> SandboxViolation:
    """Record a violation so that except/finally blocks in the script re-raise it."""
    exc = cls(message)
    if getattr(_state, "violation", None) is None:
        _state.violation = exc
    return exc


def _reraise() -> None:
    """Injected at the top of every except/finally block: a violation cannot be swallowed."""
    if _state.violation is not None:
        raise _state.violation
    if time.monotonic() > _state.deadline:
        raise _deny("script exceeded its time limit", ScriptTimeout)


# --- size guards -------------------------------------------------------------------------


def _check_add(a, b) -> None:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES) and len(a) + len(b) > MAX_ITEMS:
        raise _deny(f"value too large (more than {MAX_ITEMS} items)")


def _check_mul(a, b) -> None:
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise _deny("integer result too large")
    elif isinstance(a, _SEQUENCES) and isinstance(b, int) and len(a) * b > MAX_ITEMS or isinstance(b, _SEQUENCES) and isinstance(a, int) and len(b) * a > MAX_ITEMS:
        raise _deny(f"value too large (more than {MAX_ITEMS} items)")


def _check_pow(a, b) -> None:
    if isinstance(a, int) and isinstance(b, int) and b > 0:
        if (abs(a).bit_length() - 1) * b > MAX_INT_BITS:
            raise _deny("integer result too large")


def _check_lshift(a, b) -> None:
    if isinstance(a, int) and isinstance(b, int) and a and a.bit_length() + b > MAX_INT_BITS:
        raise _deny("integer result too large")


_CHECKS = {"+": _check_add, "*": _check_mul, "**": _check_pow, "<<": _check_lshift}
_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
    "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
    "|=": operator.ior, "^=": operator.ixor, "@=": operator.imatmul,
}


def _binop(op: str, func):
    check = _CHECKS[op]

    def guarded(a, b):
        check(a, b)
        return func(a, b)
    return guarded


def _inplacevar(op: str, x, y):
    check = _CHECKS.get(op[:-1])
    if check:
        check(x, y)
    return _INPLACE[op](x, y)


def _augitem(obj, key, op: str, value) -> None:
    """`obj[key] op= value` (only dicts and lists accept item writes)."""
    full_write_guard(obj)[key] = _inplacevar(op, obj[key], value)


def _safe_pow(base, exp, mod=None):
    if mod is None:
        _check_pow(base, exp)
        return pow(base, exp)
    return pow(base, exp, mod)


def _safe_range(*args) -> range:
    result = range(*args)
    try:
        if len(result) <= MAX_ITEMS:
            return result
    except OverflowError:
        pass
    raise _deny(f"range too large (more than {MAX_ITEMS} items)")


# --- attribute access and formatting ----------------------------------------------------


def _guarded_getattr(obj, name, *default):
    """getattr refusing private/introspection attributes; str.format is made safe."""
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    if name.startswith("_") or name in INSPECT_ATTRIBUTES:
        raise _deny(f"access to attribute {name!r} is not allowed")
    if name in ("format", "format_map"):
        if isinstance(obj, str):
            return partial(_safe_format, obj) if name == "format" else partial(_format_map, obj)
        if isinstance(obj, type) and issubclass(obj, str | string.Formatter):
            raise _deny(f"str.{name} is only allowed on string values")
    return getattr(obj, name, *default)


def _guarded_hasattr(obj, name) -> bool:
    try:
        _guarded_getattr(obj, name)
    except AttributeError:
        return False
    return True


def _check_spec(spec: str) -> str:
    """Refuse format widths/precisions that would build a huge string."""
    if any(len(n) > 8 or int(n) > MAX_ITEMS for n in re.findall(r"\d+", spec)):
        raise _deny("format width too large")
    return spec


class _SafeFormatter(string.Formatter):
    """str.format whose fields resolve attributes through the sandbox getattr."""

    def get_field(self, field_name, args, kwargs):
        first, rest = _string.formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = _guarded_getattr(obj, key) if is_attr else obj[key]
        return obj, first

    def format_field(self, value, format_spec):
        return format(value, _check_spec(format_spec))


_FORMATTER = _SafeFormatter()


def _safe_format(template: str, *args, **kwargs) -> str:
    return _FORMATTER.vformat(template, args, kwargs)


def _format_map(template: str, mapping) -> str:
    return _FORMATTER.vformat(template, (), mapping)


def _format_value(value, spec: str, conversion: int) -> str:
    """f-string field with a format spec: `f'{value!r:>10}'`."""
    if conversion != -1:
        value = {ord("s"): str, ord("r"): repr, ord("a"): ascii}[conversion](value)
    return format(value, _check_spec(spec))


# --- builtins and guard names -----------------------------------------------------------


class _Blocked:
    """Stand-in for a builtin that scripts may not use."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise _deny(f"{self.name}() is not allowed in scripts")


class _PrintSink:
    """Replaces RestrictedPython's PrintCollector: print() output goes to the debug log."""

    def _call_print(self, *objects, **kwargs) -> None:
        logger.debug("script print: %s", objects)

    def __call__(self) -> str:
        return ""


_PRINT = _PrintSink()
_UNSAFE = {"__build_class__", "_getattr_", "setattr", "delattr", "pow", "range",
           "BaseException", "SystemExit", "KeyboardInterrupt", "GeneratorExit"}
BUILTINS = {k: v for k, v in safe_builtins.items() if k not in _UNSAFE}
BUILTINS.update({name: _Blocked(name) for name in _BLOCKED})
BUILTINS.update(
    min=min, max=max, sum=sum, sorted=sorted, reversed=reversed, enumerate=enumerate, zip=zip,
    any=any, all=all, map=map, filter=filter, iter=iter, next=next, list=list, dict=dict,
    set=set, frozenset=frozenset, tuple=tuple, range=_safe_range, pow=_safe_pow,
    getattr=_guarded_getattr, hasattr=_guarded_hasattr, datetime=datetime, date=date,
    timedelta=timedelta, timezone=timezone, Decimal=Decimal,
)
_RESERVED = {
    "__builtins__": BUILTINS, "_getattr_": _guarded_getattr, "_getitem_": operator.getitem,
    "_getiter_": iter, "_write_": full_write_guard, "_unpack_sequence_": guarded_unpack_sequence,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence, "_inplacevar_": _inplacevar,
    "_apply_": lambda f, *a, **kw: f(*a, **kw), "_print_": lambda *a: _PRINT, "_print": _PRINT,
    "_add_": _binop("+", operator.add), "_mul_": _binop("*", operator.mul),
    "_pow_": _binop("**", operator.pow), "_lshift_": _binop("<<", operator.lshift), "_augitem_": _augitem, "_reraise_": _reraise,
    "_format_value_": _format_value, "_loop_": None,
}


# --- compilation ------------------------------------------------------------------------


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus our extra rules and guard rewrites."""

    _BINOPS = {ast.Add: "_add_", ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_"}

    def _call(self, name: str, args: list, node: ast.AST) -> ast.Call:
        call = ast.Call(ast.Name(name, ast.Load()), args, [])
        copy_locations(call, node)
        return call

    def visit_Import(self, node):
        self.error(node, "Import statements are not allowed.")

    visit_ImportFrom = visit_Import

    def visit_ClassDef(self, node):
        self.error(node, "Class definitions are not allowed.")

    def visit_With(self, node):
        self.error(node, "With statements are not allowed.")

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id in _BLOCKED:
            self.error(node, f'Calling "{node.func.id}" is not allowed.')
        return super().visit_Call(node)

    def visit_BinOp(self, node):
        node = self.node_contents_visit(node)
        name = self._BINOPS.get(type(node.op))
        return self._call(name, [node.left, node.right], node) if name else node

    def visit_AugAssign(self, node):
        if not isinstance(node.target, ast.Subscript):
            return super().visit_AugAssign(node)
        target = node.target
        op = ast.Constant(IOPERATOR_TO_STR[type(node.op)])
        args = [self.visit(target.value), self.visit(target.slice), op, self.visit(node.value)]
        stmt = ast.Expr(self._call("_augitem_", args, node))
        copy_locations(stmt, node)
        return stmt

    def visit_While(self, node):
        """Start each iteration with a real instruction: `while 1: pass` has no line events."""
        node = self.node_contents_visit(node)
        marker = ast.Expr(ast.Name("_loop_", ast.Load()))
        copy_locations(marker, node.body[0])
        node.body.insert(0, marker)
        return node

    def visit_Try(self, node):
        node = self.node_contents_visit(node)
        for body in [h.body for h in node.handlers] + [node.finalbody]:
            if body:
                guard = ast.Expr(self._call("_reraise_", [], body[0]))
                copy_locations(guard, body[0])
                body.insert(0, guard)
        return node

    def visit_FormattedValue(self, node):
        node = self.node_contents_visit(node)
        if node.format_spec is None:
            return node
        args = [node.value, node.format_spec, ast.Constant(node.conversion)]
        value = ast.FormattedValue(self._call("_format_value_", args, node), -1, None)
        copy_locations(value, node)
        return value


@lru_cache(maxsize=4096)
def _compile(source: str, mode: str):
    """(code, errors) for the source; raises SyntaxError for invalid Python."""
    tree = ast.parse(source, FILENAME, mode)
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(tree, FILENAME, policy=_Policy)
    return result.code, tuple(result.errors)


def _prepare(source: str, mode: str):
    if mode not in ("eval", "exec"):
        raise ValueError(f"unknown mode {mode!r}")
    return _compile(source.strip() if mode == "eval" else source, mode)


def check_source(source: str, mode: str) -> list[str]:
    """Compile errors of a script ("exec") or expression ("eval"); empty when acceptable."""
    try:
        return list(_prepare(source, mode)[1])
    except SyntaxError as exc:
        return [f"Line {exc.lineno}: SyntaxError: {exc.msg}"]


def _compiled(source: str, mode: str):
    code, errors = _prepare(source, mode)
    if errors:
        raise SandboxViolation("; ".join(errors))
    return code


# --- execution --------------------------------------------------------------------------


def _make_tracer(deadline: float):
    """Global trace function: only frames of sandboxed code get the deadline check."""

    def local(frame, event, arg, _now=time.monotonic):
        if event == "line" and _now() > deadline:
            raise _deny("script exceeded its time limit", ScriptTimeout)
        return local

    def global_(frame, event, arg):
        return local if frame.f_code.co_filename == FILENAME else None

    return global_


def _run(code, namespace: dict, timeout: float):
    saved = getattr(_state, "violation", None), getattr(_state, "deadline", None)
    _state.violation, _state.deadline = None, time.monotonic() + timeout
    previous = sys.gettrace()
    sys.settrace(_make_tracer(_state.deadline))
    try:
        return eval(code, namespace)  # noqa: S307 - restricted code object
    finally:
        sys.settrace(previous)
        _state.violation, _state.deadline = saved


class SandboxedEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluates expressions and runs scripts with RestrictedPython and a time limit."""

    def __init__(self, environment_globals: dict | None = None, timeout: float = 1.0):
        super().__init__(environment_globals)
        self.timeout = timeout

    def evaluate(self, expression, context, external_context=None):
        code = _compiled(expression, "eval")
        namespace = {**self.globals, **(external_context or {}), **context, **_RESERVED}
        return _run(code, namespace, self.timeout)

    def execute(self, script, context, external_context=None):
        external_context = external_context or {}
        self._check_for_overwrite(context, external_context)
        code = _compiled(script, "exec")
        context.update({**self.globals, **external_context, **_RESERVED})
        try:
            _run(code, context, self.timeout)
        finally:
            self._cleanup(context, external_context)
        return True

    def call_service(self, context, **kwargs):
        raise NotImplementedError("service tasks are executed asynchronously")

    def _check_for_overwrite(self, context: dict, external_context: dict) -> None:
        clash = (set(self.globals) | set(external_context)) & set(context)
        if clash:
            raise ValueError(f"Task data overwrites predefined names, please rename: {clash}")

    def _cleanup(self, context: dict, external_context: dict) -> None:
        """Drop guards, globals, external context and functions from the task data."""
        for key in list(context):
            if (key in _RESERVED or key in self.globals or key in external_context
                    or callable(context[key])):
                del context[key]


class SandboxedScriptEngine(PythonScriptEngine):
    """PythonScriptEngine running everything in a SandboxedEnvironment."""

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
            wrapped = WorkflowTaskException(
                f"Error evaluating expression '{expression}'", task=task, exception=exc)
            wrapped.exception = exc
            raise wrapped from exc

    def create_task_exec_exception(self, task, script, err):
        if isinstance(err, SpiffWorkflowException):
            return super().create_task_exec_exception(task, script, err)
        line_number, error_line = self.get_error_line_number_and_content(script, err)
        detail = f"{type(err).__name__}:{err.args[0]}" if err.args else type(err).__name__
        wrapped = WorkflowTaskException(
            detail, task=task, exception=err, line_number=line_number, error_line=error_line)
        wrapped.exception = err
        wrapped.__cause__ = err
        return wrapped
