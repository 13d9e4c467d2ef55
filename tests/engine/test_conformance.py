"""BPMN MIWG reference models: each one is either deployed or refused with located issues.

Never another exception type and never a hang. The outcome of each file is printed (run with
`-s` to see the table) and recorded as the `outcome` property of its test (junit XML).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.engine.compiler import Issue, ModelInvalid, compile_files
from app.engine.lint import lint_files

REPO_ROOT = Path(__file__).resolve().parents[2]
MIWG_DIR = REPO_ROOT.parent / "shared" / "conformance" / "miwg-reference"
MIWG_COUNT = 21
TIME_LIMIT = 30.0
CONNECTORS = {"http_request", "send_email"}
MISSING = "<miwg-reference folder missing>"


def _miwg_files() -> list[str]:
    return sorted(p.name for p in MIWG_DIR.glob("*.bpmn")) if MIWG_DIR.is_dir() else [MISSING]


def _require_folder() -> None:
    assert MIWG_DIR.is_dir(), (
        f"MIWG reference models not found at {MIWG_DIR}: the shared/ folder must sit beside "
        "the repository (shared/conformance/miwg-reference/)")


def compile_only(name: str, content: bytes) -> tuple[str, list]:
    """The compile half alone: ("deployed", processes) or ("refused", issues)."""
    try:
        return "deployed", compile_files({name: content})
    except ModelInvalid as exc:
        return "refused", exc.issues


def deploy(name: str, content: bytes) -> tuple[str, list]:
    """("refused", issues) from lint or compile, or ("deployed", compiled processes)."""
    issues = lint_files({name: content}, form_exists=lambda _: False, connectors=CONNECTORS)
    return ("refused", issues) if issues else compile_only(name, content)


def run_with_limit(func, *args):
    """func(*args) in a daemon thread; fails the test if it takes longer than TIME_LIMIT."""
    box: dict = {}

    def target():
        try:
            box["result"] = func(*args)
        except BaseException as exc:  # reported to the test below, with its type
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIME_LIMIT)
    assert not thread.is_alive(), f"no outcome within {TIME_LIMIT:.0f} s"
    if "error" in box:
        raise AssertionError(f"unexpected {type(box['error']).__name__}: {box['error']}") \
            from box["error"]
    return box["result"]


def describe(outcome: str, found: list) -> str:
    if outcome == "deployed":
        return "deployed: " + ", ".join(c.process_key for c in found)
    first = found[0]
    more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
    return f"refused: line {first.line} [{first.element_id}] {first.message}{more}"


def test_all_reference_models_are_present():
    _require_folder()
    assert len(_miwg_files()) == MIWG_COUNT, _miwg_files()


def check_outcome(name: str, step, record_property) -> None:
    _require_folder()
    outcome, found = run_with_limit(step, name, MIWG_DIR.joinpath(name).read_bytes())
    summary = describe(outcome, found)
    record_property("outcome", summary)
    print(f"{name} [{step.__name__}]: {summary}")
    assert found, f"{name}: {outcome} with nothing to show"
    if outcome == "refused":
        assert all(isinstance(i, Issue) and i.message and i.file == name for i in found), found


@pytest.mark.parametrize("name", _miwg_files())
def test_reference_model_is_deployed_or_refused_with_issues(name, record_property):
    """The deploy path: lint, then compile when lint has nothing to say."""
    check_outcome(name, deploy, record_property)


@pytest.mark.parametrize("name", _miwg_files())
def test_compiler_alone_deploys_or_refuses_with_issues(name, record_property):
    """The compile half must hold up on its own too (lint refuses most MIWG models first)."""
    check_outcome(name, compile_only, record_property)
