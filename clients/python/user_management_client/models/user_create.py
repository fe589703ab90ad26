from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="UserCreate")


@_attrs_define
class UserCreate:
    """Body of POST /users.

    Attributes:
        email (str):
        username (str):
    """

    email: str
    username: str

    def to_dict(self) -> dict[str, Any]:
        email = self.email

        username = self.username

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "email": email,
                "username": username,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        email = d.pop("email")

        username = d.pop("username")

        user_create = cls(
            email=email,
            username=username,
        )

        return user_create
