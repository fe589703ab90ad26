from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="PasswordResetConfirm")


@_attrs_define
class PasswordResetConfirm:
    """Body of POST /auth/password-reset/confirm: the mailed token and the new password.

    Attributes:
        new_password (str): 8 to 128 characters, counted after Unicode NFC; not one of the common passwords the server
            ships. A refused one is a 422 whose error type names the rule: password_too_short, password_too_long or
            password_common.
        token (str):
    """

    new_password: str
    token: str

    def to_dict(self) -> dict[str, Any]:
        new_password = self.new_password

        token = self.token

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "new_password": new_password,
                "token": token,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        new_password = d.pop("new_password")

        token = d.pop("token")

        password_reset_confirm = cls(
            new_password=new_password,
            token=token,
        )

        return password_reset_confirm
