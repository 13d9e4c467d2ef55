"""Our SpiffWorkflow parser: the spiffworkflow extensions, DMN, asynchronous service tasks,
checked timers and decisions.

The library's parser and serializer mappings are copied, never edited in place. The classes
that replace library ones (timers, business rule tasks) are serialized under the library's
type names, so specs stored before they existed restore as the checked classes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import partial

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.event_parsers import EventDefinitionParser
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.bpmn.specs.event_definitions import timer
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import BusinessRuleTaskParser, ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import BusinessRuleTask, ServiceTask

from .sandbox.storable import check_storable, unstorable
from .sandbox.violations import SandboxViolation

SERVICE_CALL = "service_call"
MAX_TIMER_DAYS = 3653  # ten years: the longest duration (or cycle interval) a timer may wait
MAX_TIMER_CYCLES = 1000  # most repetitions of a timer cycle (an explicit count is required)


class AsyncServiceTask(ServiceTask):
    """A service task that does not call anything itself.

    Running it evaluates the operation parameters (in the sandbox), records the call in the
    task's internal data and leaves the task STARTED; a worker performs the call later and the
    engine completes the task with the result.
    """

    def _execute(self, task):
        params = {name: param["value"] for name, param in self.evaluate_params(task).items()}
        try:
            check_storable(params)
        except SandboxViolation as exc:
            raise WorkflowTaskException(f"Service parameter: {exc}", task=task,
                                        exception=exc) from exc
        task.internal_data[SERVICE_CALL] = {
            "operation": self.operation_name,
            "params": params,
            "dispatched": False,
        }
        return None


class CheckedBusinessRuleTask(BusinessRuleTask):
    """A business rule task whose decision outputs must be storable task data (see sandbox):
    an output such as `{1, 2}` is taken out of the data and the task fails with a violation."""

    def _run_hook(self, my_task):
        result = super()._run_hook(my_task)
        problems = unstorable(my_task.data)
        for name in problems:
            del my_task.data[name]
        if problems:
            exc = SandboxViolation(next(iter(problems.values())))
            raise WorkflowTaskException(f"Decision output: {exc}", task=my_task,
                                        exception=exc) from exc
        return result


class _CheckedBusinessRuleTaskParser(BusinessRuleTaskParser):
    """BusinessRuleTaskParser building our class (the library's names its class directly)."""

    def create_task(self):
        extensions = self.parse_extensions()
        return self.spec_class(
            self.spec,
            self.bpmn_id,
            dmnEngine=self.process_parser.parser.get_engine(
                self.get_decision_ref(self.node), self.node),
            prescript=extensions.get("preScript"),
            postscript=extensions.get("postScript"),
            **self.bpmn_attributes,
        )


# --- timers -----------------------------------------------------------------------------

_NUMBER = r"\d{1,12}(?:[.,]\d{1,9})?"
_DURATION = re.compile(
    rf"P(?!$)(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?=\d)(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?")
_CYCLE = re.compile(r"R(\d*)/([^/]+)(?:/([^/]+))?")
_DAYS = {"years": 365.25, "months": 30.4375, "weeks": 7, "days": 1, "hours": 1 / 24,
         "minutes": 1 / 1440, "seconds": 1 / 86400}  # on average: "P10Y" is allowed


class TimerValueError(ValueError):
    """A timer expression evaluated to a value the engine cannot wait for."""


def checked_duration(value) -> dict:
    """SpiffWorkflow's parsed form of an ISO 8601 duration of at most ten years, not negative."""
    if isinstance(value, timedelta):
        if not timedelta(0) <= value <= timedelta(days=MAX_TIMER_DAYS):
            raise TimerValueError(f"duration {value} is negative or longer than ten years")
        return {"seconds": value.total_seconds()}
    if not isinstance(value, str):
        raise TimerValueError(
            f'a duration must be an ISO 8601 string such as "PT2H", got {_shown(value)}')
    text = value.strip().upper()
    if text.startswith("-"):
        raise TimerValueError(f"negative duration {_shown(value)} is not allowed")
    if not _DURATION.fullmatch(text):
        raise TimerValueError(
            f'{_shown(value)} is not an ISO 8601 duration (e.g. "PT2H", "P3D", "P1Y2M")')
    try:
        parsed = timer.TimerEventDefinition.parse_iso_duration(text)
    except Exception as exc:  # the library raises a bare Exception("Invalid duration")
        raise TimerValueError(f"{_shown(value)} is not a valid duration: {exc}") from exc
    if sum(_DAYS[unit] * amount for unit, amount in parsed.items()) > MAX_TIMER_DAYS:
        raise TimerValueError(f"duration {_shown(value)} is longer than ten years")
    return parsed


def checked_datetime(value) -> datetime:
    """An ISO 8601 date-time (a naive one is local time, as in SpiffWorkflow), in UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip() and value.strip()[0].upper() not in "PR":
        try:
            moment = timer.TimerEventDefinition.parse_time_or_duration(value.strip())
        except OverflowError as exc:
            raise TimerValueError(f"{_shown(value)} is out of range") from exc
        except Exception as exc:
            raise TimerValueError(f"{_shown(value)} is not an ISO 8601 date-time") from exc
    else:
        raise TimerValueError(f"a timer date must be an ISO 8601 date-time such as "
                              f'"2030-01-31T09:00:00Z", got {_shown(value)}')
    try:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timer.LOCALTZ)
        return moment.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise TimerValueError(f"{_shown(value)} is out of range") from exc


def checked_cycle(value) -> tuple[int, datetime, timedelta]:
    """(repetitions, first firing, interval) of an ISO 8601 repeating interval such as
    "R3/PT1H" or "R5/2030-01-01T09:00:00Z/P1D": a count of at most MAX_TIMER_CYCLES and a
    positive interval of at most ten years."""
    match = _CYCLE.fullmatch(value.strip().upper()) if isinstance(value, str) else None
    if match is None:
        raise TimerValueError(f'a timer cycle must be an ISO 8601 repeating interval such as '
                              f'"R3/PT1H", got {_shown(value)}')
    count, *parts = match.groups()
    if not count or len(count) > 6 or int(count) > MAX_TIMER_CYCLES:
        raise TimerValueError(f"timer cycle {_shown(value)} needs a repetition count of at "
                              f"most {MAX_TIMER_CYCLES} (R<n>/...)")
    parts = [part for part in parts if part is not None]
    durations = [part for part in parts if part.startswith("P")]
    if len(durations) != 1:
        raise TimerValueError(f"timer cycle {_shown(value)} needs exactly one duration")
    for part in parts:
        parsed = checked_duration(part) if part.startswith("P") else checked_datetime(part)
        if isinstance(parsed, dict) and not any(parsed.values()):
            raise TimerValueError(f"timer cycle {_shown(value)} needs a positive interval")
    try:
        return timer.TimerEventDefinition.parse_iso_recurring_interval(match.group(0))
    except Exception as exc:
        raise TimerValueError(f"{_shown(value)} is not a valid timer cycle: {exc}") from exc


def _shown(value) -> str:
    text = repr(value) if isinstance(value, str | int | float) else type(value).__name__
    return text if len(text) <= 80 else text[:80] + "..."


class _CheckedTimer:
    """Evaluates the timer's expression and checks the value before SpiffWorkflow parses it
    (it loops for hours on "P999999999Y", overflows on "P9999Y", reads "-PT1H" as +1 hour).
    The value is stored as the library stores it, so the library's own code then only reads
    checked values. Any failure is raised naming the task, so it becomes its incident."""

    kind = "timer"

    def _evaluate(self, my_task):
        return my_task.workflow.script_engine.evaluate(my_task, self.expression)

    def _checked(self, my_task, step):
        try:
            return step()
        except WorkflowTaskException:
            raise
        except Exception as exc:
            raise WorkflowTaskException(f"Timer '{self.name}' ({self.kind}): {exc}",
                                        task=my_task, exception=exc) from exc

    def _store_value(self, my_task, make) -> None:
        if my_task._get_internal_data("event_value") is None:
            my_task._set_internal_data(event_value=make(self._evaluate(my_task)))


class TimeDateEventDefinition(_CheckedTimer, timer.TimeDateEventDefinition):
    kind = "timeDate"

    def has_fired(self, my_task):
        def step():
            self._store_value(my_task, lambda value: checked_datetime(value).isoformat())
            checked_datetime(my_task._get_internal_data("event_value"))  # also older states
            return super(TimeDateEventDefinition, self).has_fired(my_task)
        return self._checked(my_task, step)


class DurationTimerEventDefinition(_CheckedTimer, timer.DurationTimerEventDefinition):
    kind = "timeDuration"

    def has_fired(self, my_task):
        def due(value) -> str:
            delta = self.get_timedelta_from_start(checked_duration(value))
            return (datetime.now(UTC) + delta).isoformat()

        def step():
            self._store_value(my_task, due)
            return super(DurationTimerEventDefinition, self).has_fired(my_task)
        return self._checked(my_task, step)


class CycleTimerEventDefinition(_CheckedTimer, timer.CycleTimerEventDefinition):
    kind = "timeCycle"

    def cycle_complete(self, my_task):
        def first(value) -> dict:
            cycles, start, duration = checked_cycle(value)
            return {"cycles": cycles, "next": start.isoformat(),
                    "duration": duration.total_seconds()}

        def step():
            self._store_value(my_task, first)
            return super(CycleTimerEventDefinition, self).cycle_complete(my_task)
        return self._checked(my_task, step)


CHECKED_TIMERS = {
    timer.TimeDateEventDefinition: TimeDateEventDefinition,
    timer.DurationTimerEventDefinition: DurationTimerEventDefinition,
    timer.CycleTimerEventDefinition: CycleTimerEventDefinition,
}


class _CheckedTimerParsing(EventDefinitionParser):
    """Mixed into every event parser: the library's timer definitions become ours."""

    def parse_timer_event(self, event):
        parsed = super().parse_timer_event(event)
        checked = CHECKED_TIMERS.get(type(parsed))
        if checked is None:
            return parsed
        return checked(parsed.name, parsed.expression, description=parsed.description)


def _checked_timers(parser_class: type) -> type:
    if not issubclass(parser_class, EventDefinitionParser):
        return parser_class
    return type(parser_class.__name__, (_CheckedTimerParsing, parser_class), {})


class FlowParser(SpiffBpmnParser):
    """SpiffBpmnParser with our service task, decisions and timers; the library's mappings are
    copied, never edited."""

    OVERRIDE_PARSER_CLASSES = {
        **{tag: (_checked_timers(parser), spec)
           for tag, (parser, spec) in {**SpiffBpmnParser.PARSER_CLASSES,
                                       **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES}.items()},
        full_tag("serviceTask"): (ServiceTaskParser, AsyncServiceTask),
        full_tag("businessRuleTask"): (_CheckedBusinessRuleTaskParser, CheckedBusinessRuleTask),
    }


def _serializer_config() -> dict:
    config = dict(SPIFF_CONFIG)
    config[AsyncServiceTask] = ServiceTaskConverter
    replaced = {**CHECKED_TIMERS, BusinessRuleTask: CheckedBusinessRuleTask}
    for library_class, ours in replaced.items():  # after the library's: ours are restored
        config[ours] = partial(config[library_class], typename=library_class.__name__)
    return config


def make_registry():
    """A serializer registry that knows every spec class our parser creates (and dates in
    task data, which scripts may store)."""
    registry = DefaultRegistry()
    registry.register(date, lambda v: {"value": v.isoformat()},
                      lambda v: date.fromisoformat(v["value"]))
    return BpmnWorkflowSerializer.configure(_serializer_config(), registry)
