from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="KeyWhoAmI")


@_attrs_define
class KeyWhoAmI:
    """The calling API key (never its secret).

    Attributes:
        name (str):
        prefix (str):
        scopes (list[str]):
        kind (Literal['api_key'] | Unset):  Default: 'api_key'.
    """

    name: str
    prefix: str
    scopes: list[str]
    kind: Literal["api_key"] | Unset = "api_key"
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        prefix = self.prefix

        scopes = self.scopes

        kind = self.kind

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "name": name,
                "prefix": prefix,
                "scopes": scopes,
            }
        )
        if kind is not UNSET:
            field_dict["kind"] = kind

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name")

        prefix = d.pop("prefix")

        scopes = cast(list[str], d.pop("scopes"))

        kind = cast(Literal["api_key"] | Unset, d.pop("kind", UNSET))
        if kind != "api_key" and not isinstance(kind, Unset):
            raise ValueError(f"kind must match const 'api_key', got '{kind}'")

        key_who_am_i = cls(
            name=name,
            prefix=prefix,
            scopes=scopes,
            kind=kind,
        )

        key_who_am_i.additional_properties = d
        return key_who_am_i

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
