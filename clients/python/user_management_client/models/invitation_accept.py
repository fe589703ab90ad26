from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="InvitationAccept")


@_attrs_define
class InvitationAccept:
    """Body of POST /auth/invitations/accept: the mailed token and the first password.

    Attributes:
        password (str): 8 to 128 characters, counted after Unicode NFC; not one of the common passwords the server
            ships. A refused one is a 422 whose error type names the rule: password_too_short, password_too_long or
            password_common.
        token (str):
    """

    password: str
    token: str

    def to_dict(self) -> dict[str, Any]:
        password = self.password

        token = self.token

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "password": password,
                "token": token,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        password = d.pop("password")

        token = d.pop("token")

        invitation_accept = cls(
            password=password,
            token=token,
        )

        return invitation_accept
