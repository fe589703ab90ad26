from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ForbiddenProblem")


@_attrs_define
class ForbiddenProblem:
    """403: the API key lacks scopes this operation needs.

    Attributes:
        detail (str):
        scopes (list[str]): The scopes missing.
        status (Literal[403]):
        title (str):
        type_ (str): "about:blank": the status and title say what happened.
    """

    detail: str
    scopes: list[str]
    status: Literal[403]
    title: str
    type_: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        detail = self.detail

        scopes = self.scopes

        status = self.status

        title = self.title

        type_ = self.type_

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "detail": detail,
                "scopes": scopes,
                "status": status,
                "title": title,
                "type": type_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        detail = d.pop("detail")

        scopes = cast(list[str], d.pop("scopes"))

        status = cast(Literal[403], d.pop("status"))
        if status != 403:
            raise ValueError(f"status must match const 403, got '{status}'")

        title = d.pop("title")

        type_ = d.pop("type")

        forbidden_problem = cls(
            detail=detail,
            scopes=scopes,
            status=status,
            title=title,
            type_=type_,
        )

        forbidden_problem.additional_properties = d
        return forbidden_problem

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
