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

The package: `limits` (the bounds), `violations` (the exceptions and the per-thread record of
the first one), `guards` (size-checked operators and builtins), `attributes` (the getattr
guard and the bounded str methods and formatting), `namespace` (builtins and reserved names
of scripts), `policy` (the compile-time transformer), `storable` (what task data may hold);
this module runs code under the time limit and holds the environment and the script engine.
"""

from __future__ import annotations

import sys
import time

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from .limits import (
    MAX_DEPTH,
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_POW_MOD_BITS,
    MAX_SORTED,
    MAX_TEXT_ITEMS,
    STORABLE,
)
from .namespace import _RESERVED, BUILTINS
from .policy import FILENAME, _compile, check_source
from .storable import _brief, check_storable, unstorable
from .violations import SandboxViolation, ScriptTimeout, _deny, _state

__all__ = [
    "BUILTINS",
    "FILENAME",
    "MAX_DEPTH",
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_POW_MOD_BITS",
    "MAX_SORTED",
    "MAX_TEXT_ITEMS",
    "STORABLE",
    "SandboxViolation",
    "SandboxedEnvironment",
    "SandboxedScriptEngine",
    "ScriptTimeout",
    "check_source",
    "check_storable",
    "unstorable",
]


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
