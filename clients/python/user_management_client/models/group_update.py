from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.group_update_scopes_item import GroupUpdateScopesItem, check_group_update_scopes_item
from ..types import UNSET, Unset

T = TypeVar("T", bound="GroupUpdate")


@_attrs_define
class GroupUpdate:
    """Body of PATCH /groups/{id}: omitted fields stay as they are.

    Attributes:
        name (str | Unset):
        scopes (list[GroupUpdateScopesItem] | Unset): Granted to every member's access token; repeats ignored.
    """

    name: str | Unset = UNSET
    scopes: list[GroupUpdateScopesItem] | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        scopes: list[str] | Unset = UNSET
        if not isinstance(self.scopes, Unset):
            scopes = []
            for scopes_item_data in self.scopes:
                scopes_item: str = scopes_item_data
                scopes.append(scopes_item)

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if name is not UNSET:
            field_dict["name"] = name
        if scopes is not UNSET:
            field_dict["scopes"] = scopes

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name", UNSET)

        _scopes = d.pop("scopes", UNSET)
        scopes: list[GroupUpdateScopesItem] | Unset = UNSET
        if _scopes is not UNSET:
            scopes = []
            for scopes_item_data in _scopes:
                scopes_item = check_group_update_scopes_item(scopes_item_data)

                scopes.append(scopes_item)

        group_update = cls(
            name=name,
            scopes=scopes,
        )

        return group_update
