"""Our SpiffWorkflow parser: the spiffworkflow extensions, DMN, and asynchronous service tasks."""

from __future__ import annotations

from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask

SERVICE_CALL = "service_call"


class AsyncServiceTask(ServiceTask):
    """A service task that does not call anything itself.

    Running it evaluates the operation parameters (in the sandbox), records the call in the
    task's internal data and leaves the task STARTED; a worker performs the call later and the
    engine completes the task with the result.
    """

    def _execute(self, task):
        params = {name: param["value"] for name, param in self.evaluate_params(task).items()}
        task.internal_data[SERVICE_CALL] = {
            "operation": self.operation_name,
            "params": params,
            "dispatched": False,
        }
        return None


class FlowParser(SpiffBpmnParser):
    """SpiffBpmnParser with our service task; the library's mapping is copied, never edited."""

    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (ServiceTaskParser, AsyncServiceTask),
    }


def _serializer_config() -> dict:
    config = dict(SPIFF_CONFIG)
    config[AsyncServiceTask] = ServiceTaskConverter
    return config


def make_registry():
    """A serializer registry that knows every spec class our parser creates."""
    return BpmnWorkflowSerializer.configure(_serializer_config())
