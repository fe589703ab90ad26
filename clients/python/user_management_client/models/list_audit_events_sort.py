from typing import Literal

ListAuditEventsSort = Literal["-id", "id"]

LIST_AUDIT_EVENTS_SORT_VALUES: set[ListAuditEventsSort] = {
    "-id",
    "id",
}


def check_list_audit_events_sort(value: str) -> ListAuditEventsSort:
    if value in LIST_AUDIT_EVENTS_SORT_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {LIST_AUDIT_EVENTS_SORT_VALUES!r}")
