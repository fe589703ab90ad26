from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.not_ready_problem_reason import NotReadyProblemReason, check_not_ready_problem_reason

T = TypeVar("T", bound="NotReadyProblem")


@_attrs_define
class NotReadyProblem:
    """503 from GET /readyz: why this replica cannot serve (each cause is logged once).

    Attributes:
        detail (str):
        reason (NotReadyProblemReason): unreachable: no answer from the database; not_migrated: it answers but has no
            schema (run the migrations); behind: its schema is an older release's.
        status (Literal[503]):
        title (str):
        type_ (str): "about:blank": the status and title say what happened.
    """

    detail: str
    reason: NotReadyProblemReason
    status: Literal[503]
    title: str
    type_: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        detail = self.detail

        reason: str = self.reason

        status = self.status

        title = self.title

        type_ = self.type_

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "detail": detail,
                "reason": reason,
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

        reason = check_not_ready_problem_reason(d.pop("reason"))

        status = cast(Literal[503], d.pop("status"))
        if status != 503:
            raise ValueError(f"status must match const 503, got '{status}'")

        title = d.pop("title")

        type_ = d.pop("type")

        not_ready_problem = cls(
            detail=detail,
            reason=reason,
            status=status,
            title=title,
            type_=type_,
        )

        not_ready_problem.additional_properties = d
        return not_ready_problem

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
