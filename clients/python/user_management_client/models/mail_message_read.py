from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.mail_message_read_state import MailMessageReadState, check_mail_message_read_state

T = TypeVar("T", bound="MailMessageRead")


@_attrs_define
class MailMessageRead:
    """One queued message and its delivery (never a token: none is stored in clear).

    Attributes:
        attempts (int):
        created_at (datetime.datetime):
        finished_at (datetime.datetime | None):
        id (int):
        kind (str): invitation, password_reset, email_verification, ...
        last_error (None | str): Why the last attempt failed, if it did.
        next_attempt_at (datetime.datetime):
        recipient (str):
        state (MailMessageReadState): pending: waiting for an attempt (or a retry); sent; failed: given up.
        user_id (int | None):
    """

    attempts: int
    created_at: datetime.datetime
    finished_at: datetime.datetime | None
    id: int
    kind: str
    last_error: None | str
    next_attempt_at: datetime.datetime
    recipient: str
    state: MailMessageReadState
    user_id: int | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        attempts = self.attempts

        created_at = self.created_at.isoformat()

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        id = self.id

        kind = self.kind

        last_error: None | str
        last_error = self.last_error

        next_attempt_at = self.next_attempt_at.isoformat()

        recipient = self.recipient

        state: str = self.state

        user_id: int | None
        user_id = self.user_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attempts": attempts,
                "created_at": created_at,
                "finished_at": finished_at,
                "id": id,
                "kind": kind,
                "last_error": last_error,
                "next_attempt_at": next_attempt_at,
                "recipient": recipient,
                "state": state,
                "user_id": user_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        attempts = d.pop("attempts")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_finished_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))

        id = d.pop("id")

        kind = d.pop("kind")

        def _parse_last_error(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        last_error = _parse_last_error(d.pop("last_error"))

        next_attempt_at = datetime.datetime.fromisoformat(d.pop("next_attempt_at"))

        recipient = d.pop("recipient")

        state = check_mail_message_read_state(d.pop("state"))

        def _parse_user_id(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        user_id = _parse_user_id(d.pop("user_id"))

        mail_message_read = cls(
            attempts=attempts,
            created_at=created_at,
            finished_at=finished_at,
            id=id,
            kind=kind,
            last_error=last_error,
            next_attempt_at=next_attempt_at,
            recipient=recipient,
            state=state,
            user_id=user_id,
        )

        mail_message_read.additional_properties = d
        return mail_message_read

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
