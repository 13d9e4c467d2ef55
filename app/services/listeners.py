"""Which service projections listen to which process (see `progress.apply`)."""

from __future__ import annotations

from . import case_timeline, mass_incidents, sla_ladder
from .processes import MAJOR_PROCESS, SLA_PROCESS, SUPPORT_PROCESS


def listeners() -> dict:
    return {SUPPORT_PROCESS: [case_timeline.project], SLA_PROCESS: [sla_ladder.project],
            MAJOR_PROCESS: [mass_incidents.project]}
