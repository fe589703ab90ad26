from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="PostUpdate")


@_attrs_define
class PostUpdate:
    """Body of PATCH and PUT /posts/{post_id}: omitted fields stay as they are.

    Attributes:
        body (str | Unset):
        title (str | Unset):
    """

    body: str | Unset = UNSET
    title: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        body = self.body

        title = self.title

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if body is not UNSET:
            field_dict["body"] = body
        if title is not UNSET:
            field_dict["title"] = title

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        body = d.pop("body", UNSET)

        title = d.pop("title", UNSET)

        post_update = cls(
            body=body,
            title=title,
        )

        return post_update
