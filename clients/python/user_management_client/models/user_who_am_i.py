from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="UserWhoAmI")


@_attrs_define
class UserWhoAmI:
    """The signed-in user calling, and the session of the access token.

    Attributes:
        scopes (list[str]):
        session_id (int):
        user_id (int):
        username (str):
        kind (Literal['user'] | Unset):  Default: 'user'.
    """

    scopes: list[str]
    session_id: int
    user_id: int
    username: str
    kind: Literal["user"] | Unset = "user"
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        scopes = self.scopes

        session_id = self.session_id

        user_id = self.user_id

        username = self.username

        kind = self.kind

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "scopes": scopes,
                "session_id": session_id,
                "user_id": user_id,
                "username": username,
            }
        )
        if kind is not UNSET:
            field_dict["kind"] = kind

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        scopes = cast(list[str], d.pop("scopes"))

        session_id = d.pop("session_id")

        user_id = d.pop("user_id")

        username = d.pop("username")

        kind = cast(Literal["user"] | Unset, d.pop("kind", UNSET))
        if kind != "user" and not isinstance(kind, Unset):
            raise ValueError(f"kind must match const 'user', got '{kind}'")

        user_who_am_i = cls(
            scopes=scopes,
            session_id=session_id,
            user_id=user_id,
            username=username,
            kind=kind,
        )

        user_who_am_i.additional_properties = d
        return user_who_am_i

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
