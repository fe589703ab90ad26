from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.group_create_scopes_item import GroupCreateScopesItem, check_group_create_scopes_item

T = TypeVar("T", bound="GroupCreate")


@_attrs_define
class GroupCreate:
    """Body of POST /groups.

    Attributes:
        name (str):
        scopes (list[GroupCreateScopesItem]): Granted to every member's access token; repeats ignored.
    """

    name: str
    scopes: list[GroupCreateScopesItem]

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        scopes = []
        for scopes_item_data in self.scopes:
            scopes_item: str = scopes_item_data
            scopes.append(scopes_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "scopes": scopes,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name")

        scopes = []
        _scopes = d.pop("scopes")
        for scopes_item_data in _scopes:
            scopes_item = check_group_create_scopes_item(scopes_item_data)

            scopes.append(scopes_item)

        group_create = cls(
            name=name,
            scopes=scopes,
        )

        return group_create
