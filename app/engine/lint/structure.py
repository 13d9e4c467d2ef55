"""Structural checks of BPMN models: an executable process, forms that exist, known
connectors, gateway flows with conditions."""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from ..compiler import FORM_PROPERTIES, Issue
from .context import _Context, _text, _xp


def _check_executable(ctx: _Context) -> list[Issue]:
    processes = _xp(ctx.root, "bpmn:process")
    if any(p.get("isExecutable") == "true" for p in processes):
        return []
    if not processes:
        return [Issue(ctx.name, ctx.root.sourceline, None, "The file defines no process")]
    ids = ", ".join(f'"{p.get("id")}"' for p in processes)
    return [ctx.issue(processes[0], f"No process is executable ({ids}); "
                                    f'set isExecutable="true" on the process to deploy')]


def _check_forms(ctx: _Context) -> Iterator[Issue]:
    path = "//bpmn:userTask/bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"
    for prop in _xp(ctx.root, path):
        if prop.get("name") in FORM_PROPERTIES:
            yield from _form_issues(ctx, prop)


def _form_issues(ctx: _Context, prop: etree._Element) -> list[Issue]:
    key, value = prop.get("name"), prop.get("value") or ""
    if not value.strip():
        return [ctx.issue(prop, f"Form property {key} has no file name")]
    if ctx.form_exists(value):
        return []
    return [ctx.issue(prop, f'Form file "{value}" ({key}) was not found: upload it together '
                            f"with the model or deploy it first")]


def _check_connectors(ctx: _Context) -> Iterator[Issue]:
    for task in _xp(ctx.root, "//bpmn:serviceTask"):
        operator = _xp(task, "bpmn:extensionElements/spiffworkflow:serviceTaskOperator")
        yield from _connector_issues(ctx, operator[0]) if operator else [_no_connector(ctx, task)]


def _no_connector(ctx: _Context, task: etree._Element) -> Issue:
    return ctx.issue(task, "Service task has no connector (spiffworkflow:serviceTaskOperator); "
                           f"available connectors: {ctx.available()}")


def _connector_issues(ctx: _Context, operator: etree._Element) -> list[Issue]:
    name = operator.get("id") or ""
    if name in ctx.connectors:
        return []
    return [ctx.issue(operator, f'Unknown connector "{name}"; '
                                f"available connectors: {ctx.available()}")]


def _check_gateways(ctx: _Context) -> Iterator[Issue]:
    for gateway in _xp(ctx.root, ".//bpmn:exclusiveGateway[@id] | .//bpmn:inclusiveGateway[@id]"):
        flows = _xp(gateway.getparent(), "bpmn:sequenceFlow[@sourceRef=$id]", id=gateway.get("id"))
        if len(flows) >= 2:
            yield from (_unguarded(ctx, gateway, flow) for flow in flows
                        if _is_unguarded(gateway, flow))


def _is_unguarded(gateway: etree._Element, flow: etree._Element) -> bool:
    conditions = _xp(flow, "bpmn:conditionExpression")
    return flow.get("id") != gateway.get("default") and not any(map(_text, conditions))


def _unguarded(ctx: _Context, gateway: etree._Element, flow: etree._Element) -> Issue:
    kind = etree.QName(gateway).localname.removesuffix("Gateway")
    return ctx.issue(flow, f'Sequence flow "{flow.get("id")}" leaves {kind} gateway '
                           f'"{gateway.get("id")}" without a condition and is not its default '
                           "flow; add a conditionExpression or make it the gateway's default")
