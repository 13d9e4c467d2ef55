"""Sandbox limits through real BPMN: C-level loops and huge values are refused quickly, values
task data cannot hold never stay in it, script functions are bounded."""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hostile import ROOT, process_spec, run_isolated, script_process, start

from app.engine import Engine
from app.engine.functions import default_calendars, script_functions
from app.engine.sandbox import SandboxedEnvironment
from app.engine.serializer import dump_state, load_state

DATA = Path(__file__).parent / "data"
MAX_MINUTES = 3653 * 24 * 60  # ten years of minutes


@pytest.fixture
def engine():
    return Engine(script_timeout=1.0)


def _script_error(snap):
    (error,) = snap.errors
    assert error.element_id == "work"
    return error


def _round_trips(snap, pspec) -> dict:
    """The instance's state restores and dumps again; the data of the script task."""
    workflow = load_state(snap.state, pspec)
    again = load_state(dump_state(workflow), pspec)
    (task,) = [t for t in again.get_tasks() if t.task_spec.bpmn_id == "work"]
    return task.data


# --- C-level loops and huge values (unguarded, these hang or exhaust memory) -------------

HOSTILE = {
    "iter_sentinel": ("r = any(iter(int, 1))", "iter(callable, sentinel)"),
    "nested_str": ("r = str([[0] * 10**7] * 1000)", "too large"),
    "nested_mul": ("a = [0] * 10**7\nb = [a] * 1000", "nested list too large"),
    "shared_repr": ("a = [0] * 10**6\nb = [a for _ in range(100)]\nr = repr(b)",
                    "too large to write as text"),
    "shared_fstring": ("a = [0] * 10**6\nb = [a for _ in range(100)]\nr = f'{b}'",
                       "too large to write as text"),
    "percent_width": ("r = '%0200000000d' % 1", "format width too large"),
    "percent_star": ("r = '%*d' % (200000000, 1)", "format width too large"),
    "replace": ("r = ('a' * 10000).replace('a', 'a' * 30000)", "text too large"),
    "unbound_replace": ("r = str.replace('a' * 10000, 'a', 'a' * 30000)", "text too large"),
    "join": ("r = ''.join(['x' * 10**7] * 100)", "text too large"),
    "translate": ("r = ('a' * 10**6).translate({97: 'b' * 1000})", "text too large"),
    "expandtabs": ("r = ('\\t' * 10**6).expandtabs(1000)", "text too large"),
    "sorted_range": ("r = sorted(range(10**7))", "sorted() of more than"),
    "fstring_doubling": ("x = 'a' * 10**6\nwhile True:\n    x = f'{x}{x}'", "text too large"),
    "format_doubling": ("x = 'a' * 10**6\nwhile True:\n    x = '{}{}'.format(x, x)",
                        "formatted text too large"),
    "percent_doubling": ("x = 'a' * 10**6\nwhile True:\n    x = '%s%s' % (x, x)",
                         "formatted text too large"),
    "extend_doubling": ("x = [0] * 10**6\nwhile True:\n    x.extend(x)", "too large"),
    "pow_mod": ("r = pow(3, 2**14000 - 1, 2**14000 - 3)", "pow() with a modulus"),
}


@pytest.fixture(scope="module")
def hostile_results():
    models = {name: (script_process(name, script), {}) for name, (script, _) in HOSTILE.items()}
    return run_isolated(models, timeout=90)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_scripts_become_incidents_quickly(name, hostile_results):
    assert name in hostile_results, f"{name}: the engine hung or ran out of memory"
    result = hostile_results[name]
    ((element, message, violation),) = result["errors"]
    assert (element, violation) == ("work", True)
    assert HOSTILE[name][1] in message
    assert result["seconds"] < 5


# --- what task data may hold --------------------------------------------------------------

UNSTORABLE = {  # name: (script, the variable it leaves, words of the message)
    "set": ("s = {1, 2}", "s", "s (a set)"),
    "timedelta": ("td = timedelta(days=1)", "td", "td (a timedelta)"),
    "generator": ("g = (x for x in [1])", "g", "g (a generator)"),
    "map": ("m = map(str, [1])", "m", "m (a map)"),
    "range": ("r = range(3)", "r", "r (a range)"),
    "exception": ("try:\n    1 / 0\nexcept Exception as exc:\n    err = exc", "err",
                  "err (a ZeroDivisionError)"),
    "timezone": ("z = timezone.utc", "z", "z (a timezone)"),
    "builtin_in_dict": ("d = {'f': len}", "d", "d['f'] (a builtin_function_or_method)"),
    "int_key": ("d = {1: 'a'}", "d", "its key 1 is a int"),
    "nan": ("f = float('nan')", "f", "only finite numbers"),
    "cycle": ("a = []\na.append(a)", "a", "contains itself"),
    "deep": ("a = []\nfor i in range(100):\n    a = [a]", "a", "nested more than 64 levels"),
}


@pytest.mark.parametrize("name", sorted(UNSTORABLE))
def test_values_task_data_cannot_hold_are_refused(name, engine):
    script, variable, words = UNSTORABLE[name]
    snap, pspec = start(engine, script_process(name, script), name, {"keep": 1})
    error = _script_error(snap)
    assert error.sandbox_violation and words in error.message, error.message
    data = _round_trips(snap, pspec)
    assert variable not in data and data["keep"] == 1
    assert variable not in snap.variables


@pytest.mark.parametrize("script", ["n = 10 ** 5000", "n = 10 ** 4299 * 10",
                                    "n = int('9' * 4300)", "n = int('f' * 10**6, 16)",
                                    "n = int.from_bytes(b'\\xff' * 10**6, 'big')"])
def test_integers_json_cannot_write_are_refused(script, engine):
    snap, pspec = start(engine, script_process("bigint", script), "bigint")
    error = _script_error(snap)
    assert error.sandbox_violation and "integer" in error.message
    assert "n" not in _round_trips(snap, pspec)


def test_decimal_is_not_offered(engine):
    snap, _ = start(engine, script_process("dec", "d = Decimal('1.5')"), "dec")
    error = _script_error(snap)
    assert "Decimal" in error.message and "d" not in snap.variables


def test_storable_values_are_kept_and_round_trip(engine):
    script = ("when = date(2024, 1, 31)\nstamp = datetime(2024, 1, 31, 9, 30, tzinfo=timezone.utc)"
              "\npair = (1, 'a')\nnested = {'k': [None, True, 2.5, 'x', {'d': when}]}"
              "\nbig = 10 ** 4000\nfn = lambda: 1")
    snap, pspec = start(engine, script_process("fine", script), "fine")
    assert snap.errors == ()
    data = _round_trips(snap, pspec)
    assert data["when"] == date(2024, 1, 31) and type(data["when"]) is date
    assert data["stamp"] == datetime(2024, 1, 31, 9, 30, tzinfo=UTC)
    assert list(data["pair"]) == [1, "a"] and data["big"] == 10**4000
    assert data["nested"]["k"][4]["d"] == date(2024, 1, 31)
    assert "fn" not in data  # top-level functions are dropped, as before


def test_a_failed_script_leaves_no_unstorable_value(engine):
    snap, pspec = start(engine, script_process("half", "s = {1}\nok = 1\nx = 1 / 0"), "half")
    error = _script_error(snap)
    assert not error.sandbox_violation and "ZeroDivisionError" in error.message
    data = _round_trips(snap, pspec)
    assert "s" not in data and data["ok"] == 1


def test_decision_outputs_must_be_storable(engine):
    dmn = (DATA / "sandbox_tier.dmn").read_text().replace(
        "<text>amount // 10</text>", "<text>{1, 2}</text>")
    files = {"sandbox_decision.bpmn": (DATA / "sandbox_decision.bpmn").read_bytes(),
             "sandbox_tier.dmn": dmn.encode()}
    pspec = process_spec(engine, files, "sandbox_decision")
    snap = engine.start(pspec, {"amount": 50, "segment": "pyme"})
    (error,) = snap.errors
    assert error.element_id == "decide" and error.sandbox_violation
    assert "fee (a set)" in error.message
    assert "fee" not in snap.variables
    load_state(snap.state, pspec)
    fine = engine.start(process_spec(engine, {**files, "sandbox_tier.dmn": (
        DATA / "sandbox_tier.dmn").read_bytes()}, "sandbox_decision"), {"amount": 50,
                                                                           "segment": "pyme"})
    assert fine.errors == () and (fine.variables["tier"], fine.variables["fee"]) == ("small", 5)


def test_service_parameters_must_be_storable(engine):
    xml = (ROOT / "tests" / "data" / "bpmn" / "notify.bpmn").read_text().replace(
        "value=\"{'customer': customer}\"", 'value="{1, 2}"')
    snap, _ = start(engine, xml.encode(), "notify", {"hook_url": "http://h", "customer": "c"})
    (error,) = snap.errors
    assert error.sandbox_violation and "json (a set)" in error.message
    assert snap.service_calls == ()


# --- script functions ---------------------------------------------------------------------


def test_script_functions_are_bounded_in_a_process(engine):
    script = "due = business_due(now_iso(), 1e8)"
    started = time.monotonic()
    snap, _ = start(engine, script_process("due", script), "due")
    assert time.monotonic() - started < 1.5
    error = _script_error(snap)
    assert "ValueError" in error.message and "ten years" in error.message


@pytest.fixture(scope="module")
def functions():
    return script_functions(default_calendars())


@pytest.mark.parametrize(("name", "args"), [
    ("business_due", ("2024-01-02T09:00:00+00:00", 1e8)),
    ("business_due", ("2024-01-02T09:00:00+00:00", math.inf)),
    ("business_due", ("2024-01-02T09:00:00+00:00", math.nan)),
    ("business_due", ("2024-01-02T09:00:00+00:00", "many")),
    ("business_due", ("2024-01-02T09:00:00+00:00", 5000,
                      {"name": "sparse", "hours": {"0": [["08:00", "08:01"]]}, "country": None})),
    ("business_minutes", ("1900-01-01T00:00:00+00:00", "2100-01-01T00:00:00+00:00")),
    ("sla_threshold", ("2024-01-02T09:00:00+00:00", 1e300, 0.5, 0)),
    ("sla_threshold", ("2024-01-02T09:00:00+00:00", 600, math.inf, 0)),
])
def test_script_functions_refuse_unbounded_arguments_quickly(functions, name, args):
    started = time.monotonic()
    with pytest.raises(ValueError):
        functions[name](*args)
    assert time.monotonic() - started < 0.5


def test_script_functions_still_compute_within_bounds(functions):
    start_at = "2024-01-02T09:00:00-05:00"  # a Tuesday in Bogota
    assert functions["business_due"](start_at, 60) == "2024-01-02T10:00:00-05:00"
    started = time.monotonic()
    far = datetime.fromisoformat(functions["business_due"](start_at, MAX_MINUTES // 2))
    assert time.monotonic() - started < 2 and far.year > 2024
    assert functions["business_minutes"](start_at, "2024-01-02T11:00:00-05:00") == 120
    assert functions["sla_threshold"](start_at, 120, 0.5, 0) == "2024-01-02T10:00:00-05:00"
    always = functions["business_due"](start_at, MAX_MINUTES, "7x24")
    assert datetime.fromisoformat(always) - datetime.fromisoformat(start_at) == timedelta(
        minutes=MAX_MINUTES)


# --- the sandbox still runs ordinary scripts, fast -----------------------------------------


@pytest.fixture
def env():
    return SandboxedEnvironment(timeout=1.0)


def test_ordinary_scripts_pass_the_new_guards(env):
    context = {"name": "Ana", "items": ["b", "A"], "amount": 12.5}
    env.execute(
        "kinds = [isinstance(name, str), isinstance(1, int), issubclass(bool, int),"
        " isinstance(1, str), isinstance(name, (int, str))]\n"
        "ordered = sorted(items, key=str.lower)\n"
        "numbers = [int('12'), int('ff', 16), int(3.7), int.from_bytes(b'\\x01\\x00', 'big')]\n"
        "texts = [str(5), repr([1]), str(b'x', 'ascii'), 'x'.join(['a', 'b']), str.upper('u'),"
        " 'abc'.replace('b', 'xyz'), f'{name!r:>6}|{amount:.1f}|{[1, 2]}', '{0}-{1}'.format(1, 2),"
        " '%s=%5.1f' % (name, amount), 'a\\tb'.expandtabs(4), 'ab'.center(6, '*')]\n"
        "modular = pow(3, 4, 5)\nrest = 7 % 3\nwhole = list(iter([1, 2]))\n"
        "grown = [1]\ngrown.extend([2, 3])\ngrown += range(2)\n",
        context)
    assert context["kinds"] == [True, True, True, False, True]
    assert context["ordered"] == ["A", "b"] and context["numbers"] == [12, 255, 3, 256]
    assert context["texts"] == ["5", "[1]", "x", "axb", "U", "axyzc", " 'Ana'|12.5|[1, 2]",
                                "1-2", "Ana= 12.5", "a   b", "**ab**"]
    assert (context["modular"], context["rest"], context["whole"]) == (1, 1, [1, 2])
    assert context["grown"] == [1, 2, 3, 0, 1]


def test_simple_expressions_stay_fast(env):
    context = {"amount": 5, "status": "open"}
    env.evaluate("amount > 0", context)
    best = min(_timed(env, "amount > 0", context) for _ in range(5))
    assert best < 50e-6, f"{best * 1e6:.1f} µs per evaluation"


def _timed(env, expression: str, context: dict, runs: int = 2000) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        env.evaluate(expression, context)
    return (time.perf_counter() - started) / runs
