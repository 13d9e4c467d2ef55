"""The keys of the processes the CRM services know by name (in bpmn/support_case/)."""

SUPPORT_PROCESS = "support_case"
SLA_PROCESS = "sla_watch"
MAJOR_PROCESS = "major_incident"
