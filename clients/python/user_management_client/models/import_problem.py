from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.import_problem_status import ImportProblemStatus, check_import_problem_status

if TYPE_CHECKING:
    from ..models.line_problem import LineProblem


T = TypeVar("T", bound="ImportProblem")


@_attrs_define
class ImportProblem:
    """409 (duplicates) or 422 (invalid rows) from an all-or-nothing import: nothing written.

    Attributes:
        created (int): Rows written: 0.
        detail (str):
        errors (list[LineProblem]): The first lines that failed, and why.
        skipped (int): Rows not written.
        status (ImportProblemStatus):
        title (str):
        type_ (str): "about:blank": the status and title say what happened.
    """

    created: int
    detail: str
    errors: list[LineProblem]
    skipped: int
    status: ImportProblemStatus
    title: str
    type_: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created = self.created

        detail = self.detail

        errors = []
        for errors_item_data in self.errors:
            errors_item = errors_item_data.to_dict()
            errors.append(errors_item)

        skipped = self.skipped

        status: int = self.status

        title = self.title

        type_ = self.type_

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created": created,
                "detail": detail,
                "errors": errors,
                "skipped": skipped,
                "status": status,
                "title": title,
                "type": type_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.line_problem import LineProblem  # noqa: PLC0415

        d = dict(src_dict)
        created = d.pop("created")

        detail = d.pop("detail")

        errors = []
        _errors = d.pop("errors")
        for errors_item_data in _errors:
            errors_item = LineProblem.from_dict(errors_item_data)

            errors.append(errors_item)

        skipped = d.pop("skipped")

        status = check_import_problem_status(d.pop("status"))

        title = d.pop("title")

        type_ = d.pop("type")

        import_problem = cls(
            created=created,
            detail=detail,
            errors=errors,
            skipped=skipped,
            status=status,
            title=title,
            type_=type_,
        )

        import_problem.additional_properties = d
        return import_problem

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
