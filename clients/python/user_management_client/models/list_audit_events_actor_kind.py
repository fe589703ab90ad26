from typing import Literal

ListAuditEventsActorKind = Literal["anonymous", "api_key", "cli", "system", "user"]

LIST_AUDIT_EVENTS_ACTOR_KIND_VALUES: set[ListAuditEventsActorKind] = {
    "anonymous",
    "api_key",
    "cli",
    "system",
    "user",
}


def check_list_audit_events_actor_kind(value: str) -> ListAuditEventsActorKind:
    if value in LIST_AUDIT_EVENTS_ACTOR_KIND_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {LIST_AUDIT_EVENTS_ACTOR_KIND_VALUES!r}")
