"""Reading a workflow: what runs next, what waits, what failed. Pure functions over one workflow."""

from __future__ import annotations

from datetime import UTC, datetime

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from .parser import SERVICE_CALL, AsyncServiceTask
from .sandbox.violations import SandboxViolation
from .views import ErrorView, MessageWait, OutgoingMessage, ServiceCallView, TimerView, UserTaskView

ERROR_KEY = "error"
_LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR


def run_steps(wf) -> None:
    """Fire due timers and run every engine task; a failure is recorded on its task."""
    for task in _timers(wf):  # BpmnWorkflow.refresh_timers, one timer at a time
        try:
            task.task_spec._update(task)
        except Exception as exc:  # a bad timer value fails its own task, not the refresh
            record_error(wf, exc, refreshing=task)
    try:
        wf.do_engine_steps()
    except Exception as exc:  # script errors and violations become incidents, not crashes
        record_error(wf, exc)


def _timers(wf) -> list:
    return [task for task in list(wf.event_manager.tasks.values())
            if isinstance(task.task_spec.event_definition,
                          TimerEventDefinition | MultipleEventDefinition)]


def record_error(wf, exc: Exception, refreshing=None) -> None:
    """Put the task to blame for `exc` in ERROR with the message (the service opens an
    incident for it); re-raise `exc` only when no task can be blamed."""
    task = _blamed_task(wf, exc, refreshing)
    if task is None:
        raise exc
    if not task.has_state(TaskState.ERROR):
        task.error()
    task.workflow.top_workflow.event_manager.remove_task(task)  # not refreshed again
    task.internal_data[ERROR_KEY] = {"message": _describe(exc), "sandbox": _is_violation(exc)}


def _blamed_task(wf, exc: Exception, refreshing=None):
    """The task named by the exception (or one of its causes), else the timer being
    refreshed, else a task put in ERROR by this failure, else a timer whose evaluation failed
    (reached but neither waiting with a value nor ready)."""
    for cause in _causes(exc):
        task = getattr(cause, "task", None)
        if isinstance(task, Task):
            return task
    if refreshing is not None:
        return refreshing
    errored = wf.get_tasks(state=TaskState.ERROR)
    fresh = [t for t in errored if ERROR_KEY not in t.internal_data]
    failed_timers = [
        t for t in wf.get_tasks(state=TaskState.FUTURE | TaskState.WAITING)
        if any(isinstance(d, TimerEventDefinition) for d in _definitions(t))
        and t.parent is not None and t.parent.has_state(TaskState.COMPLETED)
        and (t.has_state(TaskState.FUTURE) or t.internal_data.get("event_value") is None)
    ]
    for candidates in (fresh, failed_timers, errored):
        if candidates:
            return max(candidates, key=lambda t: t.last_state_change)
    return None


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "exception", None) or exc.__cause__ or exc.__context__


def _is_violation(exc: Exception) -> bool:
    return any(isinstance(e, SandboxViolation) for e in _causes(exc))


def _describe(exc: Exception) -> str:
    notes = getattr(exc, "notes", None) or []
    text = str(exc) or exc.__class__.__name__
    return "; ".join([text, *notes])[:2000]


def report(wf, script_engine) -> dict:
    """Everything the services track, in one pass over the live tasks."""
    found = {"user_tasks": [], "timers": [], "messages": [], "service_calls": [], "errors": []}
    for task in wf.get_tasks(state=_LIVE):
        _classify(task, script_engine, found)
    return {key: tuple(value) for key, value in found.items()}


def _classify(task, script_engine, found: dict) -> None:
    spec = task.task_spec
    if task.has_state(TaskState.ERROR):
        found["errors"].append(_error_view(task))
    elif task.has_state(TaskState.READY) and spec.manual:
        found["user_tasks"].append(_user_task_view(task, script_engine))
    elif task.has_state(TaskState.STARTED) and isinstance(spec, AsyncServiceTask):
        call = _take_service_call(task)
        if call:
            found["service_calls"].append(call)
    elif task.has_state(TaskState.WAITING):
        _classify_waiting(task, script_engine, found)


def _classify_waiting(task, script_engine, found: dict) -> None:
    for definition in _definitions(task):
        if isinstance(definition, TimerEventDefinition):
            timer = _timer_view(task, definition)
            if timer:
                found["timers"].append(timer)
        elif isinstance(definition, MessageEventDefinition):
            found["messages"].append(_message_wait(task, definition, script_engine))


def _definitions(task) -> list:
    """The event definitions a waiting task listens for (an event-based gateway has several)."""
    definition = getattr(task.task_spec, "event_definition", None)
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [definition] if definition is not None else []


def _error_view(task) -> ErrorView:
    recorded = task.internal_data.get(ERROR_KEY) or {}
    return ErrorView(
        spiff_task_id=str(task.id),
        element_id=task.task_spec.bpmn_id,
        message=recorded.get("message", "the task failed"),
        sandbox_violation=recorded.get("sandbox", False),
    )


def _properties(spec) -> dict:
    return (getattr(spec, "extensions", None) or {}).get("properties", {}) or {}


def _user_task_view(task, script_engine) -> UserTaskView:
    spec = task.task_spec
    props = _properties(spec)

    def evaluate(name):
        return _evaluate(script_engine, props.get(name), task.data)

    return UserTaskView(
        spiff_task_id=str(task.id),
        element_id=spec.bpmn_id,
        title=spec.bpmn_name or spec.bpmn_id,
        candidate_groups=_groups(evaluate("candidateGroupsExpression"),
                                 props.get("candidateGroups") or spec.lane),
        form_key=props.get("formJsonSchemaFilename"),
        ui_form_key=props.get("formUiSchemaFilename"),
        priority=_as_int(evaluate("priority")),
        due_at=parse_datetime(evaluate("dueAt")),
        assignee=_as_str(evaluate("assigneeExpression")),
        form_enums=_form_enums(props, evaluate),
        instructions=_as_str(evaluate("instructionsExpression")),
    )


def _groups(computed, literal: str | None) -> tuple[str, ...]:
    """Candidate groups: a computed str/list wins over the literal list or the lane name."""
    if isinstance(computed, (list, tuple)):
        names = [str(g) for g in computed]
    else:
        names = (computed if isinstance(computed, str) else literal or "").split(",")
    return tuple(g.strip() for g in names if g and g.strip())


def _form_enums(props: dict, evaluate) -> dict | None:
    """`formEnum.<field>` properties: the values a form field may take, computed from data."""
    enums = {}
    for name in props:
        if name.startswith("formEnum."):
            values = evaluate(name)
            if isinstance(values, (list, tuple)):
                enums[name.removeprefix("formEnum.")] = list(values)
    return enums or None


def _as_str(value) -> str | None:
    return str(value) if isinstance(value, (str, int)) and str(value) else None


def _evaluate(script_engine, expression: str | None, data: dict):
    if not expression:
        return None
    try:
        return script_engine.environment.evaluate(expression, dict(data))
    except Exception:  # a display hint that cannot be computed is left empty
        return None


def _as_int(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _take_service_call(task) -> ServiceCallView | None:
    call = task.internal_data.get(SERVICE_CALL)
    if not call or call.get("dispatched"):
        return None
    call["dispatched"] = True
    spec = task.task_spec
    return ServiceCallView(str(task.id), spec.bpmn_id, call["operation"], call["params"],
                           spec.retries)


def _timer_view(task, definition) -> TimerView | None:
    value = definition.details(task).value
    due = parse_datetime(value)
    return TimerView(str(task.id), task.task_spec.bpmn_id, due) if due else None


def _message_wait(task, definition, script_engine) -> MessageWait:
    correlation = {}
    for prop in definition.correlation_properties:
        value = _evaluate(script_engine, prop.retrieval_expression, task.data)
        if value is not None:
            correlation[prop.name] = value
    correlation.update(_flatten(task.workflow.top_workflow.correlations))
    return MessageWait(definition.name, correlation)


def outgoing(wf) -> tuple[OutgoingMessage, ...]:
    """Messages thrown that no task of this instance catches (taken out of the workflow)."""
    return tuple(
        OutgoingMessage(event.event_definition.name, _as_payload(event.payload),
                        _flatten(event.correlations))
        for event in wf.get_events()
        if isinstance(event.event_definition, MessageEventDefinition)
    )


def _flatten(correlations: dict) -> dict:
    """SpiffWorkflow's {correlation key: {property: value}} as {property: value}."""
    flat = {}
    for values in (correlations or {}).values():
        flat.update(values)
    return flat


def _as_payload(payload) -> dict:
    return dict(payload) if isinstance(payload, dict) else {"value": payload}


def message_catchers(wf, name: str) -> list[tuple]:
    """(task, message definition) of every waiting task that listens for message `name`."""
    return [
        (task, definition)
        for task in wf.get_tasks(state=TaskState.WAITING)
        for definition in _definitions(task)
        if isinstance(definition, MessageEventDefinition) and definition.name == name
    ]


def variables(wf) -> dict:
    """The instance's current data: that of where its main flow stands (the latest READY user
    task or waiting event), else of the last task that ran. Tasks of side branches that are
    still running (e.g. a STARTED service task) carry older data and are not taken."""
    live = [t for t in wf.get_tasks(state=TaskState.READY | TaskState.WAITING)
            if t.task_spec.manual or _definitions(t)]
    source = max(live, key=lambda t: t.last_state_change, default=None) or wf.last_task
    data = dict(source.data) if source is not None else {}
    data.update(wf.data)
    return data


def parse_datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_datetime(datetime.fromisoformat(value))
    except ValueError:
        return None


def decision_engine(pspec, decision_id: str):
    """The DMN engine of a business rule task calling `decision_id`, in the process or its
    subprocesses."""
    for spec in (pspec.spec, *pspec.subprocess_specs.values()):
        for task_spec in spec.task_specs.values():
            engine = getattr(task_spec, "dmnEngine", None)
            called = (getattr(task_spec, "extensions", None) or {}).get("calledDecisionId")
            if engine is not None and called == decision_id:
                return engine
    return None
