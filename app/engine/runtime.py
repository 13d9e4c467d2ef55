"""The engine seam: every SpiffWorkflow call the services need, on serialized state."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from threading import Lock
from types import SimpleNamespace
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from app.domain.errors import Conflict, NotFound

from . import introspect
from .functions import default_calendars, script_functions
from .sandbox import SandboxedScriptEngine
from .serializer import ProcessSpec, dump_state, load_spec, load_state
from .views import Snapshot


class Engine:
    """Runs process instances. Stateless but for a cache of restored specs (one per version)."""

    def __init__(self, script_timeout: float = 1.0, cache_size: int = 256, calendars=None):
        self.calendars = calendars or default_calendars()
        functions = script_functions(self.calendars)
        self.script_engine = SandboxedScriptEngine(timeout=script_timeout,
                                                   environment_globals=functions)
        self._specs: OrderedDict[int, ProcessSpec] = OrderedDict()
        self._cache_size = cache_size
        self._lock = Lock()

    def process_spec(self, definition_id: int, spec_json: Callable[[], str]) -> ProcessSpec:
        """The restored spec of a definition version; `spec_json` is called only on a miss."""
        with self._lock:
            if definition_id in self._specs:
                self._specs.move_to_end(definition_id)
                return self._specs[definition_id]
        spec = load_spec(spec_json())
        with self._lock:
            self._specs[definition_id] = spec
            while len(self._specs) > self._cache_size:
                self._specs.popitem(last=False)
        return spec

    def start(self, pspec: ProcessSpec, variables: dict, message: tuple | None = None) -> Snapshot:
        """Create an instance; `message` = (name, payload) for a message start event."""
        wf = BpmnWorkflow(pspec.spec, pspec.subprocess_specs, script_engine=self.script_engine)
        for task in wf.get_tasks(state=TaskState.READY):
            task.data.update(variables)
        if message is None:
            return self._advance(wf)
        introspect.run_steps(wf)
        return self._deliver(wf, *message)

    def complete_user_task(self, pspec, state: bytes, spiff_task_id: str, data: dict) -> Snapshot:
        wf = self._load(pspec, state)
        task = self._task(wf, spiff_task_id, TaskState.READY)
        if not task.task_spec.manual:
            raise Conflict(f"task {spiff_task_id} is not a user task")
        add_data = getattr(task.task_spec, "add_data_from_form", None)
        add_data(task, data) if add_data else task.update_data(data)
        task.run()
        return self._advance(wf)

    def complete_service_task(self, pspec, state: bytes, spiff_task_id: str, result) -> Snapshot:
        wf = self._load(pspec, state)
        task = self._task(wf, spiff_task_id, TaskState.STARTED)
        task.data[task.task_spec.result_variable] = result
        task.complete()
        return self._advance(wf)

    def fire_timers(self, pspec, state: bytes) -> Snapshot:
        return self._advance(self._load(pspec, state))

    def deliver_message(self, pspec, state: bytes, name: str, payload: dict) -> Snapshot:
        return self._deliver(self._load(pspec, state), name, payload)

    def retry_task(self, pspec, state: bytes, spiff_task_id: str) -> Snapshot:
        """Run a task that failed (script error) again from the start."""
        wf = self._load(pspec, state)
        task = self._task(wf, spiff_task_id, TaskState.ERROR)
        try:
            wf.reset_from_task_id(task.id)
        except Exception as exc:  # e.g. a timer whose value is still invalid
            introspect.record_error(wf, exc, refreshing=task)
            return self._snapshot(wf)
        return self._advance(wf)

    def snapshot(self, pspec, state: bytes) -> Snapshot:
        return self._snapshot(self._load(pspec, state))

    def cancel(self, pspec, state: bytes) -> bytes:
        wf = self._load(pspec, state)
        wf.cancel()
        return dump_state(wf)

    def decide(self, pspec: ProcessSpec, decision_id: str, data: dict) -> dict:
        """Evaluate a DMN decision used by the process (outside any instance)."""
        table = introspect.decision_engine(pspec, decision_id)
        if table is None:
            raise NotFound(f"the process has no decision '{decision_id}'")
        probe = SimpleNamespace(data=dict(data), workflow=SimpleNamespace(
            script_engine=self.script_engine), task_spec=None)
        return table.result(probe)

    def variables(self, pspec, state: bytes) -> dict:
        return introspect.variables(self._load(pspec, state))

    def _load(self, pspec: ProcessSpec, state: bytes) -> BpmnWorkflow:
        wf = load_state(state, pspec)
        wf.script_engine = self.script_engine
        return wf

    def _task(self, wf: BpmnWorkflow, spiff_task_id: str, state: int):
        try:
            task = wf.get_task_from_id(UUID(spiff_task_id))
        except (ValueError, SpiffWorkflowException):
            task = None
        if task is None:
            raise NotFound(f"task {spiff_task_id} not found in the instance")
        if not task.has_state(state):
            raise Conflict(f"task {task.task_spec.bpmn_id} is {TaskState.get_name(task.state)}")
        return task

    def _deliver(self, wf: BpmnWorkflow, name: str, payload: dict) -> Snapshot:
        waiting = introspect.message_catchers(wf, name)
        if not waiting:
            raise Conflict(f"the instance is not waiting for message '{name}'")
        definition = waiting[0][1]
        event = BpmnEvent(definition, payload, self._correlations(definition, payload))
        wf.catch(event)
        for task, _ in waiting:  # after the catch: catching re-inherits the parent's data
            task.data.update(payload)
        return self._advance(wf)

    def _correlations(self, definition: MessageEventDefinition, payload: dict) -> dict:
        try:
            return definition.calculate_correlations(
                self.script_engine, definition.correlation_properties, payload)
        except Exception:  # a property the payload lacks: correlate on the rest
            return {}

    def _advance(self, wf: BpmnWorkflow) -> Snapshot:
        introspect.run_steps(wf)
        return self._snapshot(wf, introspect.outgoing(wf))

    def _snapshot(self, wf: BpmnWorkflow, outgoing: tuple = ()) -> Snapshot:
        report = introspect.report(wf, self.script_engine)
        return Snapshot(state=dump_state(wf), completed=wf.completed, outgoing=outgoing,
                        variables=introspect.variables(wf), **report)
