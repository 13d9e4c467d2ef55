"""RestrictedPython sandbox for BPMN scripts, expressions and DMN entries: guarded attribute
access, size limits on `+ * ** <<`/range/format widths, and a per-thread time limit."""

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

from RestrictedPython import Guards, compile_restricted_eval, compile_restricted_exec
from RestrictedPython import transformer as rp
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

logger = logging.getLogger(__name__)

FILENAME = "<string>"  # SpiffWorkflow looks for this name to report script line numbers
MAX_ITEMS = 10_000_000  # longest str/list/tuple/range (and format width) a script may build
MAX_INT_BITS = 33_220  # about 10,000 decimal digits
_SEQUENCES = (str, bytes, bytearray, list, tuple)
_SIZED_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "to_bytes"})
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


def _reraise() -> None:
    """Injected at the top of every except/finally block: violations cannot be swallowed."""
    if _state.violation is not None:
        raise _state.violation
    if time.monotonic() > _state.deadline:
        raise _deny("script exceeded its time limit", ScriptTimeout)


def _add(a, b, op=operator.add):
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES) and len(a) + len(b) > MAX_ITEMS:
        raise _deny(f"value too large (more than {MAX_ITEMS} items)")
    return op(a, b)


def _mul(a, b, op=operator.mul):
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise _deny("integer result too large")
    else:
        seq, count = (a, b) if isinstance(a, _SEQUENCES) else (b, a)
        if isinstance(seq, _SEQUENCES) and isinstance(count, int) and len(seq) * count > MAX_ITEMS:
            raise _deny(f"value too large (more than {MAX_ITEMS} items)")
    return op(a, b)


def _pow(base, exp, mod=None):
    if mod is not None:
        return pow(base, exp, mod)
    big = isinstance(base, int) and isinstance(exp, int) and exp > 0
    if big and (abs(base).bit_length() - 1) * exp > MAX_INT_BITS:
        raise _deny("integer result too large")
    return base**exp


def _lshift(a, b):
    if isinstance(a, int) and isinstance(b, int) and a and a.bit_length() + b > MAX_INT_BITS:
        raise _deny("integer result too large")
    return a << b


_iadd, _imul = partial(_add, op=operator.iadd), partial(_mul, op=operator.imul)
_GUARDED_INPLACE = {"+=": "_iadd_", "*=": "_imul_", "**=": "_pow_", "<<=": "_lshift_"}
_INPLACE = {  # for `obj[key] op= value`
    "+=": _iadd, "-=": operator.isub, "*=": _imul, "/=": operator.itruediv, "%=": operator.imod,
    "//=": operator.ifloordiv, "**=": _pow, "<<=": _lshift, ">>=": operator.irshift,
    "&=": operator.iand, "|=": operator.ior, "^=": operator.ixor, "@=": operator.imatmul}


def _augitem(obj, key, op: str, value) -> None:
    """`obj[key] op= value` (only dicts and lists accept item writes)."""
    Guards.full_write_guard(obj)[key] = _INPLACE[op](obj[key], value)


def _range(*args) -> range:
    result = range(*args)
    if (result.stop - result.start) // result.step > MAX_ITEMS:
        raise _deny(f"range too large (more than {MAX_ITEMS} items)")
    return result


def _getattr(obj, name, *default):
    """getattr refusing private/introspection attributes; str.format gets the safe formatter."""
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    if name.startswith("_") or name in rp.INSPECT_ATTRIBUTES or name == "mro":
        raise _deny(f"access to attribute {name!r} is not allowed")
    if name in _SIZED_METHODS:
        return partial(_sized_call, getattr(obj, name))
    if name in ("format", "format_map"):
        if isinstance(obj, str) and name == "format":
            return lambda *args, **kwargs: _FORMATTER.vformat(obj, args, kwargs)
        if isinstance(obj, str):
            return lambda mapping: _FORMATTER.vformat(obj, (), mapping)
        if isinstance(obj, type) and issubclass(obj, str | string.Formatter):
            raise _deny(f"str.{name} is only allowed on string values")
    return getattr(obj, name, *default)


def _sized_call(method, *args, **kwargs):
    """Call a padding method (ljust, zfill, to_bytes...) refusing huge widths."""
    if any(isinstance(v, int) and v > MAX_ITEMS for v in (*args, *kwargs.values())):
        raise _deny(f"value too large (more than {MAX_ITEMS} items)")
    return method(*args, **kwargs)


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
            obj = _getattr(obj, key) if is_attr else obj[key]
        return obj, first

    def format_field(self, value, format_spec):
        return format(value, _check_spec(format_spec))


_FORMATTER = _SafeFormatter()


def _format_value(value, spec: str, conversion: int) -> str:
    """An f-string field with a format spec, e.g. `f'{value!r:>10}'`."""
    if conversion != -1:
        value = {ord("s"): str, ord("r"): repr, ord("a"): ascii}[conversion](value)
    return format(value, _check_spec(spec))


def _blocked(name: str, *args, **kwargs):
    """Stand-in for a builtin that scripts may not use."""
    raise _deny(f"{name}() is not allowed in scripts")


class _PrintSink:
    """Replaces RestrictedPython's PrintCollector: print() goes to the debug log."""

    def _call_print(self, *objects, **kwargs) -> None:
        logger.debug("script print: %s", objects)

    def __call__(self) -> str:  # the `printed` variable
        return ""


_PRINT = _PrintSink()
_UNSAFE = {"__build_class__", "_getattr_", "setattr", "delattr", "pow", "range",
           "BaseException", "SystemExit", "KeyboardInterrupt", "GeneratorExit"}
BUILTINS = {k: v for k, v in Guards.safe_builtins.items() if k not in _UNSAFE}
BUILTINS.update({name: partial(_blocked, name) for name in _BLOCKED})
BUILTINS.update(
    min=min, max=max, sum=sum, sorted=sorted, reversed=reversed, enumerate=enumerate, zip=zip,
    any=any, all=all, map=map, filter=filter, iter=iter, next=next, list=list, dict=dict,
    set=set, frozenset=frozenset, tuple=tuple, range=_range, pow=_pow, getattr=_getattr,
    hasattr=lambda obj, name: _getattr(obj, name, _MISSING) is not _MISSING,
    datetime=datetime, date=date, timedelta=timedelta, timezone=timezone, Decimal=Decimal,
)
_RESERVED = {  # names the rewritten code refers to; always set last so data cannot shadow them
    "__builtins__": BUILTINS, "_getattr_": _getattr, "_getitem_": operator.getitem,
    "_getiter_": iter, "_write_": Guards.full_write_guard, "_apply_": lambda f, *a, **k: f(*a, **k),
    "_unpack_sequence_": Guards.guarded_unpack_sequence, "_print_": lambda *a: _PRINT,
    "_iter_unpack_sequence_": Guards.guarded_iter_unpack_sequence, "_print": _PRINT,
    "_add_": _add, "_mul_": _mul, "_pow_": _pow, "_lshift_": _lshift, "_iadd_": _iadd,
    "_imul_": _imul, "_augitem_": _augitem, "_reraise_": _reraise, "_loop_": None,
    "_format_value_": _format_value,
}


class _Policy(rp.RestrictingNodeTransformer):
    """RestrictedPython's policy plus our own rules and guard rewrites."""

    _BINOPS = {ast.Add: "_add_", ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_"}

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
        node = self.node_contents_visit(node)
        if node.format_spec is None:
            return node
        args = [node.value, node.format_spec, ast.Constant(node.conversion)]
        value = ast.FormattedValue(self._call("_format_value_", args, node), -1, None)
        rp.copy_locations(value, node)
        return value


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
        return eval(code, namespace)
    finally:
        sys.settrace(previous)
        _state.violation, _state.deadline = saved


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
        try:
            _run(script, "exec", context, self.timeout)
        finally:
            for key in list(context):  # drop guards, globals, external context and functions
                if (key in _RESERVED or key in self.globals or key in external_context
                        or callable(context[key])):
                    del context[key]
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
        detail = f"{type(err).__name__}:{err.args[0]}" if err.args else type(err).__name__
        return _wrap(task, err, detail, line_number=line_number, error_line=error_line)


def _wrap(task, err: Exception, message: str, **details) -> WorkflowTaskException:
    """A WorkflowTaskException whose cause (also `.exception`) is the original error."""
    wrapped = WorkflowTaskException(message, task=task, exception=err, **details)
    wrapped.exception, wrapped.__cause__ = err, err
    return wrapped
