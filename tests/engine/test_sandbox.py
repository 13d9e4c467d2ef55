"""The script sandbox: legit scripts work, escapes are refused, time and size are bounded."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_environment import TaskDataEnvironment
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from app.engine import sandbox
from app.engine.sandbox import (
    SandboxedEnvironment,
    SandboxedScriptEngine,
    SandboxViolation,
    ScriptTimeout,
    check_source,
)

DATA = Path(__file__).parent / "data"
TIMEOUT = 0.3


@pytest.fixture
def env() -> SandboxedEnvironment:
    return SandboxedEnvironment(timeout=TIMEOUT)


# --- check_source -----------------------------------------------------------------------


def test_check_source_accepts_valid_code():
    assert check_source("total = sum(x * 2 for x in items)\nok = total > 0", "exec") == []
    assert check_source("amount > 0 and status == 'open'", "eval") == []
    assert check_source("\n    amount > 0\n", "eval") == []


@pytest.mark.parametrize(
    ("source", "mode", "line", "words"),
    [
        ("x = 1\nimport os", "exec", 2, "Import"),
        ("x = 1\ny = 2\nfrom os import path", "exec", 3, "ImportFrom"),
        ("_secret = 1", "exec", 1, '"_secret"'),
        ("__import__('os')", "eval", 1, '"__import__"'),
        ("x = 1\ny = ().__class__", "exec", 2, '"__class__"'),
        ("x = 1\ny = (", "exec", 2, "SyntaxError"),
        ("amount >", "eval", 1, "SyntaxError"),
        ("x = 1", "eval", 1, "SyntaxError"),
        ("open('/etc/passwd')", "eval", 1, '"open"'),
        ("eval('1')", "eval", 1, "Eval"),
        ("exec('x = 1')", "exec", 1, "Exec"),
        ("type(x)", "eval", 1, '"type"'),
        ("class A:\n    pass", "exec", 1, "ClassDef"),
        ("with x:\n    pass", "exec", 1, "With"),
    ],
)
def test_check_source_flags_errors_with_line_numbers(source, mode, line, words):
    errors = check_source(source, mode)
    assert errors, source
    assert any(f"Line {line}" in error and words in error for error in errors), errors


def test_compile_results_are_cached(env):
    before = sandbox._compile.cache_info().hits
    for _ in range(5):
        env.evaluate("cache_probe_value + 1", {"cache_probe_value": 1})
    assert sandbox._compile.cache_info().hits >= before + 4


# --- legit expressions and scripts -------------------------------------------------------


def test_simple_expressions(env):
    assert env.evaluate("amount > 0", {"amount": 5}) is True
    assert env.evaluate("\n   amount > 0\n", {"amount": -1}) is False
    assert env.evaluate("[x for x in items if x > limit]", {"items": [1, 5, 9], "limit": 4}) == [
        5, 9]
    assert env.evaluate("{k: v * 2 for k, v in d.items()}", {"d": {"a": 1}}) == {"a": 2}
    assert env.evaluate("customer['tier']", {"customer": {"tier": "gold"}}) == "gold"
    assert env.evaluate("type == 'complaint'", {"type": "complaint"}) is True  # data may shadow
    assert env.evaluate("print('ignored') is None", {}) is True


def test_allowed_builtins(env):
    expr = (
        "(len(xs), min(xs), max(xs), sum(xs), abs(-2), round(2.567, 1), sorted(xs),"
        " list(reversed(xs)), list(enumerate('ab')), list(zip(xs, 'ab')), list(range(3)),"
        " any(xs), all(xs), isinstance(1, int), int('4'), float('1.5'), str(3), bool(0),"
        " dict(a=1), set([1, 1]), tuple(xs))"
    )
    assert env.evaluate(expr, {"xs": [3, 1, 2]}) == (
        3, 1, 3, 6, 2, 2.6, [1, 2, 3], [2, 1, 3], [(0, "a"), (1, "b")], [(3, "a"), (1, "b")],
        [0, 1, 2], True, True, True, 4, 1.5, "3", False, {"a": 1}, {1}, (3, 1, 2))


def test_datetime_and_decimal(env):
    now = env.evaluate("datetime.now(timezone.utc).isoformat()", {})
    assert datetime.fromisoformat(now).tzinfo is not None
    assert env.evaluate("(date(2024, 1, 31) + timedelta(days=1)).isoformat()", {}) == "2024-02-01"
    with pytest.raises(NameError):  # a Decimal cannot be stored in task data: not offered
        env.evaluate("Decimal('0.1') + Decimal('0.2')", {})


def test_string_formatting(env):
    ctx = {"total": 12.345, "name": "Ana"}
    assert env.evaluate("f'{name}: {total:.2f} {name!r:>6}'", ctx) == "Ana: 12.35  'Ana'"
    assert env.evaluate("'{} {n}'.format(1, n=name)", ctx) == "1 Ana"
    assert env.evaluate("'{0[k]}'.format({'k': 'v'})", ctx) == "v"
    assert env.evaluate("'{name}'.format_map({'name': 'x'})", ctx) == "x"
    assert env.evaluate("'%s-%d' % (name, 3)", ctx) == "Ana-3"


def test_script_writes_data_back(env):
    context = {"items": [{"sku": "a", "price": 10, "qty": 3}], "counter": 1}
    script = """
def line_total(item):
    return item['price'] * item['qty']
double = lambda v: v * 2
totals = {}
for item in items:
    totals[item['sku']] = line_total(item)
totals['a'] += 5
counter += 1
tags = ['new']
tags.append('vip')
tags += ['x']
first, (second, third) = 1, (2, 3)
pairs = [(k, v) for k, v in totals.items()]
n = 0
while True:
    n += 1
    if n >= 3:
        break
try:
    int('nope')
except ValueError as exc:
    error = str(exc)
finally:
    cleaned = True
doubled = double(counter)
print('debug output', counter)
"""
    assert env.execute(script, context) is True
    assert context["totals"] == {"a": 35}
    assert context["counter"] == 2
    assert context["tags"] == ["new", "vip", "x"]
    assert (context["first"], context["second"], context["third"]) == (1, 2, 3)
    assert context["pairs"] == [("a", 35)]
    assert context["n"] == 3
    assert "invalid literal" in context["error"] and context["cleaned"] is True
    assert context["doubled"] == 4
    assert "line_total" not in context and "double" not in context
    assert not [key for key in context if key.startswith("_")]


def test_environment_globals_and_external_context():
    engine_env = SandboxedEnvironment({"vat": lambda amount: amount * 0.21}, timeout=TIMEOUT)
    context = {"amount": 100}
    engine_env.execute("tax = vat(amount) + bonus", context, {"bonus": 1})
    assert context == {"amount": 100, "tax": 22.0}
    assert engine_env.evaluate("vat(amount) + bonus", context, {"bonus": 2}) == 23.0
    with pytest.raises(ValueError, match="vat"):
        engine_env.execute("x = 1", {"vat": 3})


def test_helpers_called_from_scripts_are_not_traced():
    def helper():
        return sys._getframe().f_trace is None

    engine_env = SandboxedEnvironment({"helper": helper}, timeout=TIMEOUT)
    assert engine_env.evaluate("helper()", {}) is True


def test_call_service_is_not_supported(env):
    with pytest.raises(NotImplementedError):
        env.call_service({}, operation_name="x")


# --- escapes ----------------------------------------------------------------------------

_OPEN_FROM_B = "(b['open'] if isinstance(b, dict) else b.open)(PATH, 'w').close()"
ESCAPES = {
    "dunder_import": "__import__('os').system('touch ' + PATH)",
    "import": "import os\nos.system('touch ' + PATH)",
    "from_import": "from pathlib import Path\nPath(PATH).touch()",
    "subclasses": (
        "w = [c for c in ().__class__.__base__.__subclasses__()"
        " if c.__name__ == 'catch_warnings'][0]\n"
        "w()._module.__builtins__['open'](PATH, 'w').close()"
    ),
    "getattr": (
        "g = getattr\n"
        "base = g(g((), '__cl' + 'ass__'), '__ba' + 'se__')\n"
        "w = [c for c in g(base, '__subcl' + 'asses__')()"
        " if g(c, '__na' + 'me__') == 'catch_warnings'][0]\n"
        "g(g(w(), '_mod' + 'ule'), '__buil' + 'tins__')['open'](PATH, 'w').close()"
    ),
    "type_subclasses": (
        "w = [c for c in type(()).__base__.__subclasses__()"
        " if c.__name__ == 'catch_warnings'][0]\n"
        "w()._module.__builtins__['open'](PATH, 'w').close()"
    ),
    "open": "open(PATH, 'w').close()",
    "open_alias": "f = open\nf(PATH, 'w').close()",
    "eval": "eval(\"open(PATH, 'w').close()\")",
    "exec": "exec(\"open(PATH, 'w').close()\")",
    "compile": "exec(compile(\"open(PATH, 'w').close()\", 'x', 'exec'))",
    "globals": "b = globals()['__builtins__']\n" + _OPEN_FROM_B,
    "vars": "b = vars()['__builtins__']\n" + _OPEN_FROM_B,
    "frame": "g = (x for x in [1])\ng.gi_frame.f_builtins['open'](PATH, 'w').close()",
    "frame_getattr": "g = (x for x in [1])\ngetattr(g, 'gi_frame').f_builtins['open'](PATH, 'w')",
    "swallowed": (
        "try:\n    getattr((), '__class__')\nexcept Exception:\n    pass\n"
        "open(PATH, 'w').close()"
    ),
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escape_payloads_work_without_the_sandbox(name, tmp_path):
    """Control: each payload really creates the file under SpiffWorkflow's default engine."""
    target = tmp_path / "pwned"
    with contextlib.suppress(Exception):  # only the side effect matters here
        TaskDataEnvironment().execute(ESCAPES[name], {"PATH": str(target)})
    assert target.exists()


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escape_payloads_are_refused(name, tmp_path, env):
    target = tmp_path / "pwned"
    with pytest.raises(SandboxViolation):
        env.execute(ESCAPES[name], {"PATH": str(target)})
    assert not target.exists()


@pytest.mark.parametrize(
    "expression",
    [
        "'{0.__class__}'.format(1)",
        "'{0.__class__.__base__}'.format(())",
        "'{x.__class__}'.format_map({'x': 1})",
        "str.format('{0.__class__}', 1)",
        "getattr(1, '__cl' + 'ass__')",
        "getattr(getattr, '__self__')",
        "hasattr(1, '__class__')",
        "open('/etc/passwd').read()",
        "type(1)",
        "dir()",
        "globals()",
        "locals()",
        "vars()",
        "input()",
        "breakpoint()",
        "help()",
        "__import__('os')",
        "().__class__",
    ],
)
def test_expression_escapes_are_refused(expression, env):
    with pytest.raises(SandboxViolation):
        env.evaluate(expression, {})


def test_violation_cannot_be_swallowed(env):
    script = "try:\n    getattr((), '__class__')\nexcept:\n    leaked = True\n"
    context = {}
    with pytest.raises(SandboxViolation):
        env.execute(script, context)
    assert "leaked" not in context


# --- time limit -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        "while True: pass",
        "while 1:\n    continue",
        "n = 0\nwhile True:\n    n += 1",
        "def spin():\n    while True:\n        pass\nspin()",
        "while True:\n    try:\n        while True: pass\n    except Exception:\n        pass",
        "while True:\n    try:\n        while True: pass\n    except:\n        continue",
        "try:\n    while True: pass\nfinally:\n    while True: pass",
        "x = [1 for a in range(10**7) for b in range(10**7)]",
        "x = sum(a * b for a in range(10**7) for b in range(10**7))",
    ],
)
def test_endless_scripts_time_out(script, env):
    started = time.monotonic()
    with pytest.raises(ScriptTimeout):
        env.execute(script, {})
    assert time.monotonic() - started < TIMEOUT + 1.5


def test_endless_expression_times_out(env):
    with pytest.raises(ScriptTimeout):
        env.evaluate("[1 for a in range(10**7) for b in range(10**7)]", {})


def test_timeout_works_in_threads_and_restores_the_tracer(env):
    results = {}

    def previous_tracer(frame, event, arg):
        return None

    def spin():
        sys.settrace(previous_tracer)
        try:
            env.execute("while True: pass", {})
        except ScriptTimeout as exc:
            results["spin"] = exc
        results["tracer"] = sys.gettrace()
        sys.settrace(None)

    def quick():
        results["quick"] = [env.evaluate("x * 2", {"x": i}) for i in range(200)]

    threads = [threading.Thread(target=spin), threading.Thread(target=quick)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert isinstance(results["spin"], ScriptTimeout)
    assert results["tracer"] is previous_tracer
    assert results["quick"] == [i * 2 for i in range(200)]


def test_tracer_is_restored_in_this_thread(env):
    before = sys.gettrace()
    env.evaluate("amount > 0", {"amount": 1})
    with pytest.raises(ScriptTimeout):
        env.execute("while True: pass", {})
    assert sys.gettrace() is before


# --- size limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        "x = 'a' * 10**9",
        "x = 10**9 * 'a'",
        "x = [0] * 10**9",
        "x = 10 ** 10**8",
        "x = pow(10, 10**8)",
        "x = 1 << 10**8",
        "x = list(range(10**12))",
        "x = range(10**12)",
        "x = 'a' * 10**6\nwhile True:\n    x += x",
        "x = 'a' * 10**6\nwhile True:\n    x = x + x",
        "x = [0] * 10**6\nwhile True:\n    x *= 2",
        "d = {'k': 'a' * 10**6}\nwhile True:\n    d['k'] *= 2",
        "x = 10**5000\nwhile True:\n    x = x * x",
        "x = f'{1:>1000000000}'",
        "x = '{:>1000000000}'.format(1)",
    ],
)
def test_huge_values_are_refused(script, env):
    with pytest.raises(SandboxViolation):
        env.execute(script, {})


def test_reasonable_sizes_are_allowed(env):
    context = {}
    env.execute("s = 'ab' * 1000\nn = 2 ** 100\nbig = 10 ** 4000\nr = len(range(10**6))", context)
    assert len(context["s"]) == 2000 and context["n"] == 2**100
    assert context["big"] == 10**4000 and context["r"] == 10**6


# --- through SpiffWorkflow --------------------------------------------------------------


def _workflow(process_id: str, *files: str, engine=None, **data) -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    for name in files:
        if name.endswith(".dmn"):
            parser.add_dmn_file(str(DATA / name))
        else:
            parser.add_bpmn_file(str(DATA / name))
    spec = parser.get_spec(process_id)
    subprocesses = parser.get_subprocess_specs(process_id)
    workflow = BpmnWorkflow(spec, subprocesses, script_engine=engine or SandboxedScriptEngine())
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(data)
    return workflow


def _end_data(workflow: BpmnWorkflow) -> dict:
    return workflow.get_tasks(spec_name="end")[0].data


def _script_workflow(script: str | None = None, **data) -> BpmnWorkflow:
    workflow = _workflow("sandbox_script", "sandbox_script.bpmn", **data)
    if script is not None:
        workflow.spec.task_specs["compute"].script = script
    return workflow


def test_workflow_script_sets_data():
    items = [{"sku": "a", "price": 10, "qty": 3}, {"sku": "b", "price": 2.5, "qty": 2}]
    workflow = _script_workflow(items=items)
    workflow.do_engine_steps()
    assert workflow.is_completed()
    data = _end_data(workflow)
    assert data["totals"] == {"a": 30, "b": 5.0}
    assert data["summary"] == "2 items, total 35.00" and data["approved"] is True
    assert "line_total" not in data


@pytest.mark.parametrize("name", ["dunder_import", "subclasses", "getattr", "open"])
def test_workflow_refuses_malicious_script(name, tmp_path):
    target = tmp_path / "pwned"
    workflow = _script_workflow(ESCAPES[name], PATH=str(target))
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert isinstance(info.value.exception, SandboxViolation)
    assert isinstance(info.value.__cause__, SandboxViolation)
    assert not target.exists()


def test_workflow_script_timeout_is_a_violation():
    workflow = _workflow("sandbox_script", "sandbox_script.bpmn",
                         engine=SandboxedScriptEngine(timeout=TIMEOUT))
    workflow.spec.task_specs["compute"].script = "x = 1\nwhile True:\n    x += 1"
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert isinstance(info.value.exception, ScriptTimeout)
    assert info.value.line_number in (2, 3)


def test_workflow_ordinary_error_is_not_a_violation():
    workflow = _script_workflow("x = 1\ny = x / 0")
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert isinstance(info.value.exception, ZeroDivisionError)
    assert not isinstance(info.value.__cause__, SandboxViolation)
    assert info.value.line_number == 2


@pytest.mark.parametrize(
    ("amount", "segment", "tier", "fee"),
    [(50, "pyme", "small", 5), (150, "corporate", "key account", 0), (150, "pyme", "large", 7)],
)
def test_dmn_decision_through_the_sandbox(amount, segment, tier, fee):
    workflow = _workflow("sandbox_decision", "sandbox_decision.bpmn", "sandbox_tier.dmn",
                         amount=amount, segment=segment)
    workflow.do_engine_steps()
    assert workflow.is_completed()
    data = _end_data(workflow)
    assert (data["tier"], data["fee"]) == (tier, fee)


@pytest.mark.parametrize(
    "payload", ["getattr((), '__cl' + 'ass__')", "open(PATH, 'w')", "__import__('os')"])
def test_dmn_output_entries_are_sandboxed(payload, tmp_path):
    target = tmp_path / "pwned"
    workflow = _workflow("sandbox_decision", "sandbox_decision.bpmn", "sandbox_tier.dmn",
                         amount=50, segment="pyme", PATH=str(target))
    rule = workflow.spec.task_specs["decide"].dmnEngine.decision_table.rules[0]
    rule.outputEntries[1].text = payload
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert isinstance(info.value.exception, SandboxViolation)
    assert not target.exists()


def test_message_correlation_evaluates_through_the_environment():
    engine = SandboxedScriptEngine(timeout=TIMEOUT)
    assert engine.environment.evaluate("order['id']", {"order": {"id": 7}}) == 7
    with pytest.raises(SandboxViolation):
        engine.environment.evaluate("order.__class__", {"order": {}})


def test_validate_raises_syntax_error():
    engine = SandboxedScriptEngine()
    engine.validate("amount > 0")
    engine.validate("x = 1\ny = x + 1")
    for source in ("x = (", "import os", "_x = 1"):
        with pytest.raises(SyntaxError):
            engine.validate(source)
