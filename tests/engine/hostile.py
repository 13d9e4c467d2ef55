"""Helpers of the hostile-input tests: small BPMN models built around one script or timer,
started through the Engine, and a runner that starts models in a child process bounded in time
and memory (for payloads that, unguarded, would hang the interpreter or exhaust memory)."""

from __future__ import annotations

import itertools
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from app.engine import Engine, compile_files

ROOT = Path(__file__).resolve().parents[2]
_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
         '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
         'id="defs" targetNamespace="http://clientconnect.example/bpmn">')
_ids = itertools.count(10_000)


def script_process(pid: str, script: str) -> bytes:
    """start -> script task `work` -> user task `review` -> end."""
    return (_HEAD + f'''<bpmn:process id="{pid}" isExecutable="true">
<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
<bpmn:scriptTask id="work"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
<bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>
<bpmn:userTask id="review"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
</bpmn:userTask>
<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
<bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="review"/>
<bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="end"/>
</bpmn:process></bpmn:definitions>''').encode()


def timer_process(pid: str, kind: str, expression: str, boundary: bool = False) -> bytes:
    """An intermediate timer `t` before user task `review`; with `boundary`, a non-interrupting
    timer `b` on user task `review` leading to user task `reminder`."""
    timer = (f'<bpmn:timerEventDefinition id="td"><bpmn:{kind}>{escape(expression)}'
             f'</bpmn:{kind}></bpmn:timerEventDefinition>')
    if boundary:
        body = f'''<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
<bpmn:userTask id="review"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
</bpmn:userTask>
<bpmn:boundaryEvent id="b" attachedToRef="review" cancelActivity="false">
<bpmn:outgoing>f3</bpmn:outgoing>{timer}</bpmn:boundaryEvent>
<bpmn:userTask id="reminder"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
</bpmn:userTask>
<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
<bpmn:endEvent id="end2"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
<bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="end"/>
<bpmn:sequenceFlow id="f3" sourceRef="b" targetRef="reminder"/>
<bpmn:sequenceFlow id="f4" sourceRef="reminder" targetRef="end2"/>'''
    else:
        body = f'''<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
<bpmn:intermediateCatchEvent id="t"><bpmn:incoming>f1</bpmn:incoming>
<bpmn:outgoing>f2</bpmn:outgoing>{timer}</bpmn:intermediateCatchEvent>
<bpmn:userTask id="review"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
</bpmn:userTask>
<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t"/>
<bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="review"/>
<bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="end"/>'''
    return (_HEAD + f'<bpmn:process id={quoteattr(pid)} isExecutable="true">{body}'
            '</bpmn:process></bpmn:definitions>').encode()


def process_spec(engine: Engine, files: dict[str, bytes], pid: str):
    """Compile `files` and restore process `pid` through the engine's spec cache."""
    compiled = {c.process_key: c for c in compile_files(files)}[pid]
    return engine.process_spec(next(_ids), lambda: compiled.spec_json)


def start(engine: Engine, xml: bytes, pid: str, variables: dict | None = None):
    """(snapshot, process spec) of a new instance of the one-process model `xml`."""
    pspec = process_spec(engine, {f"{pid}.bpmn": xml}, pid)
    return engine.start(pspec, variables or {}), pspec


_CHILD = r"""
import json, sys, time
from app.engine import Engine, compile_files
engine = Engine(script_timeout=1.0)
for number, (name, xml, variables) in enumerate(json.load(sys.stdin)):
    (compiled,) = compile_files({name + ".bpmn": xml.encode()})
    pspec = engine.process_spec(number, lambda: compiled.spec_json)
    started = time.monotonic()
    snap = engine.start(pspec, variables)
    errors = [[e.element_id, e.message, e.sandbox_violation] for e in snap.errors]
    print(json.dumps({"name": name, "seconds": time.monotonic() - started, "errors": errors,
                      "variables": sorted(snap.variables)}), flush=True)
"""


def _limit_memory() -> None:
    limit = 3 << 30  # 3 GiB of address space: an unguarded payload fails instead of swapping
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_isolated(models: dict[str, tuple[bytes, dict]], timeout: float = 60) -> dict:
    """Start each model (name -> (xml, variables)) in a child process, in order; {name: result}
    of those that finished before `timeout` (a model that hangs or crashes the child is missing,
    as are the ones after it)."""
    payload = json.dumps([[name, xml.decode(), variables]
                          for name, (xml, variables) in models.items()])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD], cwd=ROOT, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=_limit_memory)
    try:
        out, _ = child.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate()
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {result["name"]: result for result in results}
