from typing import Literal

ListMailMessagesState = Literal["failed", "pending", "sent"]

LIST_MAIL_MESSAGES_STATE_VALUES: set[ListMailMessagesState] = {
    "failed",
    "pending",
    "sent",
}


def check_list_mail_messages_state(value: str) -> ListMailMessagesState:
    if value in LIST_MAIL_MESSAGES_STATE_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {LIST_MAIL_MESSAGES_STATE_VALUES!r}")
