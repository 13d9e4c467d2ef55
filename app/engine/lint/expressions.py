"""Checks of the Python expressions and scripts of BPMN models: each must compile in the
sandbox; timers are also checked for unquoted ISO 8601 values."""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from ..compiler import Issue
from .context import _Context, _text, _xp

_NUM = r"\d+(?:[.,]\d+)?"
_DURATION = (rf"P(?=[\dT])(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?"
             rf"(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?")
_DATE = r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_CYCLE = rf"R\d*(?:/(?:{_DURATION}|{_DATE})){{1,2}}"
UNQUOTED_ISO = re.compile(rf"{_DURATION}|{_DATE}|{_CYCLE}")


def _check_timers(ctx: _Context) -> Iterator[Issue]:
    parts = "bpmn:timeDuration | bpmn:timeDate | bpmn:timeCycle"
    for definition in _xp(ctx.root, "//bpmn:timerEventDefinition"):
        for node in _xp(definition, parts):
            yield from _timer_issues(ctx, node)


def _timer_issues(ctx: _Context, node: etree._Element) -> list[Issue]:
    label, text = f"Timer {etree.QName(node).localname}", _text(node)
    if not text:
        return [ctx.issue(node, f'{label} is empty; enter a Python expression such as "PT2H"')]
    if UNQUOTED_ISO.fullmatch(text):
        return [ctx.issue(node, f"{label} {text} is an unquoted ISO 8601 value; timer "
                                f'expressions are Python expressions, so quote it: "{text}"')]
    return _source_issues(ctx, node, label, "eval")


def _check_scripts(ctx: _Context) -> Iterator[Issue]:
    for node in _xp(ctx.root, "//bpmn:scriptTask/bpmn:script"):
        yield from _source_issues(ctx, node, "Script", "exec")
    for name, label in (("preScript", "Pre-script"), ("postScript", "Post-script")):
        for node in _xp(ctx.root, f"//bpmn:extensionElements/spiffworkflow:{name}"):
            yield from _source_issues(ctx, node, label, "exec")
    for node in _xp(ctx.root, "//bpmn:sequenceFlow/bpmn:conditionExpression"):
        yield from _source_issues(ctx, node, "Condition", "eval")


def _source_issues(ctx: _Context, node: etree._Element, label: str, mode: str) -> list[Issue]:
    if not _text(node):
        return []
    return [ctx.issue(node, f"{label}: {message}") for message in _check_source(node.text, mode)]


def _check_source(source: str, mode: str) -> list[str]:
    from ..sandbox.policy import check_source

    try:
        return check_source(source, mode)
    except (RecursionError, MemoryError):
        return ["the code is nested too deeply to be compiled"]


EXPRESSION_PROPERTIES = ("priority", "dueAt", "candidateGroupsExpression", "assigneeExpression",
                         "instructionsExpression")
"""spiffworkflow:property values of user/manual tasks evaluated on the task's data at run time
(together with every `formEnum.<field>`)."""

_EXPRESSIONS = (
    # (XPath of the element whose text is one Python expression, label)
    ("//bpmn:multiInstanceLoopCharacteristics/bpmn:loopCardinality", "Loop cardinality"),
    ("//bpmn:multiInstanceLoopCharacteristics/bpmn:completionCondition", "Completion condition"),
    ("//bpmn:standardLoopCharacteristics/bpmn:loopCondition", "Loop condition"),
    ("//bpmn:adHocSubProcess/bpmn:completionCondition", "Completion condition"),
    ("//bpmn:conditionalEventDefinition/bpmn:condition", "Event condition"),
    ("//bpmn:correlationPropertyRetrievalExpression/bpmn:messagePath"
     " | //bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression",
     "Correlation retrieval expression"),
    ("//spiffworkflow:processVariableCorrelation/spiffworkflow:expression",
     "Correlation expression"),
    ("//spiffworkflow:messagePayload", "Message payload"),
)


def _check_expressions(ctx: _Context) -> Iterator[Issue]:
    """Expressions the engine evaluates at run time, besides scripts, conditions and timers."""
    for path, label in _EXPRESSIONS:
        for node in _xp(ctx.root, path):
            yield from _source_issues(ctx, node, label, "eval")


def _check_service_parameters(ctx: _Context) -> Iterator[Issue]:
    path = "//spiffworkflow:serviceTaskOperator/spiffworkflow:parameters/spiffworkflow:parameter"
    for param in _xp(ctx.root, path):
        value = param.get("value")
        if value is None:
            continue  # SpiffWorkflow ignores a parameter without a value
        label = f'Service parameter "{param.get("id") or ""}"'
        if not value.strip():
            yield ctx.issue(param, f"{label} has an empty value; enter a Python expression "
                                   'such as "text" (quoted) or a variable name')
            continue
        yield from (ctx.issue(param, f"{label}: {message}")
                    for message in _check_source(value, "eval"))


def _check_task_properties(ctx: _Context) -> Iterator[Issue]:
    path = ("//bpmn:userTask/bpmn:extensionElements/spiffworkflow:properties/"
            "spiffworkflow:property | //bpmn:manualTask/bpmn:extensionElements/"
            "spiffworkflow:properties/spiffworkflow:property")
    for prop in _xp(ctx.root, path):
        name, value = prop.get("name") or "", prop.get("value") or ""
        if (name in EXPRESSION_PROPERTIES or name.startswith("formEnum.")) and value.strip():
            yield from (ctx.issue(prop, f'Property "{name}": {message}')
                        for message in _check_source(value, "eval"))
