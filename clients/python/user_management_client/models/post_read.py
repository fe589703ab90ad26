from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.author_read import AuthorRead


T = TypeVar("T", bound="PostRead")


@_attrs_define
class PostRead:
    """A post as the API returns it, with its author.

    Attributes:
        author (AuthorRead): The author embedded in a post.
        author_id (int):
        body (str):
        created_at (datetime.datetime):
        id (int):
        title (str):
        updated_at (datetime.datetime):
    """

    author: AuthorRead
    author_id: int
    body: str
    created_at: datetime.datetime
    id: int
    title: str
    updated_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        author = self.author.to_dict()

        author_id = self.author_id

        body = self.body

        created_at = self.created_at.isoformat()

        id = self.id

        title = self.title

        updated_at = self.updated_at.isoformat()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "author": author,
                "author_id": author_id,
                "body": body,
                "created_at": created_at,
                "id": id,
                "title": title,
                "updated_at": updated_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.author_read import AuthorRead  # noqa: PLC0415

        d = dict(src_dict)
        author = AuthorRead.from_dict(d.pop("author"))

        author_id = d.pop("author_id")

        body = d.pop("body")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        title = d.pop("title")

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        post_read = cls(
            author=author,
            author_id=author_id,
            body=body,
            created_at=created_at,
            id=id,
            title=title,
            updated_at=updated_at,
        )

        post_read.additional_properties = d
        return post_read

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
