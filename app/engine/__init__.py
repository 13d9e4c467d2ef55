"""The only package that imports SpiffWorkflow."""

from .compiler import CompiledProcess, Issue, ModelInvalid, compile_files
from .runtime import Engine
from .serializer import ProcessSpec
from .views import ErrorView, MessageWait, ServiceCallView, Snapshot, TimerView, UserTaskView

__all__ = [
    "CompiledProcess", "Engine", "ErrorView", "Issue", "MessageWait", "ModelInvalid",
    "ProcessSpec", "ServiceCallView", "Snapshot", "TimerView", "UserTaskView", "compile_files",
]
