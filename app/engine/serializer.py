"""Serialization with the spec stored apart from the state.

A definition's spec is converted once at deploy time (`dump_spec`) and restored once per
process (`load_spec`, cached by the caller). An instance's state (`dump_state`) holds tasks and
data only, compressed; `load_state` rebuilds the workflow around the cached spec objects.
"""

from __future__ import annotations

import json
import threading
import zlib
from dataclasses import dataclass
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.bpmn.serializer.migration.version_migration import MIGRATIONS
from SpiffWorkflow.bpmn.serializer.workflow import VERSION
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from .parser import make_registry

VERSION_KEY = "serializer_version"


@dataclass(frozen=True)
class ProcessSpec:
    """The restored, immutable spec objects of one definition version."""

    spec: object
    subprocess_specs: dict


class _StateConverter(BpmnWorkflowConverter):
    """Converts a top-level workflow without its spec and restores it around given specs."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, process_spec: ProcessSpec | None = None):
        workflow = self.target_class(
            process_spec.spec, process_spec.subprocess_specs, deserializing=True
        )
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class _Codec(threading.local):
    """One registry per thread: the registry's encoder mode is a flag shared by its users."""

    def __init__(self):
        self.registry = make_registry()
        _StateConverter(BpmnWorkflow, self.registry)
        self.encoder = create_encoder(self.registry)


_codec = _Codec()


def dump_spec(spec, subprocess_specs: dict) -> str:
    registry = _codec.registry
    return json.dumps({
        "spec": registry.convert(spec),
        "subprocess_specs": {name: registry.convert(sp) for name, sp in subprocess_specs.items()},
    })


def load_spec(spec_json: str) -> ProcessSpec:
    dct = json.loads(spec_json)
    registry = _codec.registry
    subprocess_specs = {
        name: registry.restore(sp) for name, sp in dct["subprocess_specs"].items()
    }
    return ProcessSpec(registry.restore(dct["spec"]), subprocess_specs)


def dump_state(workflow: BpmnWorkflow) -> bytes:
    registry = _codec.registry
    registry._encoder_mode = True
    try:
        dct = registry.convert(workflow)
        dct[VERSION_KEY] = VERSION
        text = json.dumps(dct, cls=_codec.encoder, separators=(",", ":"))
    finally:
        registry._encoder_mode = False
    return zlib.compress(text.encode(), 6)


def load_state(blob: bytes, process_spec: ProcessSpec) -> BpmnWorkflow:
    dct = json.loads(zlib.decompress(blob))
    version = dct.pop(VERSION_KEY)
    if version in MIGRATIONS:
        MIGRATIONS[version](dct)
    return _codec.registry.restore(dct, process_spec=process_spec)
