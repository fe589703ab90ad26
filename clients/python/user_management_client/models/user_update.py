from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="UserUpdate")


@_attrs_define
class UserUpdate:
    """Body of PATCH and PUT /users/{id}: omitted fields stay as they are.

    Attributes:
        active (bool | Unset): users:admin only. false: deactivate (sign-in refused, every session revoked at once);
            true: reactivate.
        email (str | Unset):
        username (str | Unset):
    """

    active: bool | Unset = UNSET
    email: str | Unset = UNSET
    username: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        active = self.active

        email = self.email

        username = self.username

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if active is not UNSET:
            field_dict["active"] = active
        if email is not UNSET:
            field_dict["email"] = email
        if username is not UNSET:
            field_dict["username"] = username

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        active = d.pop("active", UNSET)

        email = d.pop("email", UNSET)

        username = d.pop("username", UNSET)

        user_update = cls(
            active=active,
            email=email,
            username=username,
        )

        return user_update
