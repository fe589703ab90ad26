from typing import Literal

ExportAuditEventsActorKind = Literal["anonymous", "api_key", "cli", "user"]

EXPORT_AUDIT_EVENTS_ACTOR_KIND_VALUES: set[ExportAuditEventsActorKind] = {
    "anonymous",
    "api_key",
    "cli",
    "user",
}


def check_export_audit_events_actor_kind(value: str) -> ExportAuditEventsActorKind:
    if value in EXPORT_AUDIT_EVENTS_ACTOR_KIND_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {EXPORT_AUDIT_EVENTS_ACTOR_KIND_VALUES!r}")
