from typing import Literal

MailMessageReadState = Literal["failed", "pending", "sent"]

MAIL_MESSAGE_READ_STATE_VALUES: set[MailMessageReadState] = {
    "failed",
    "pending",
    "sent",
}


def check_mail_message_read_state(value: str) -> MailMessageReadState:
    if value in MAIL_MESSAGE_READ_STATE_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {MAIL_MESSAGE_READ_STATE_VALUES!r}")
