from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.line_problem import LineProblem
    from ..models.validation_error_item import ValidationErrorItem


T = TypeVar("T", bound="Problem")


@_attrs_define
class Problem:
    """An RFC 9457 problem document; the optional members appear only where they apply.

    Attributes:
        detail (str):
        status (int):
        title (str):
        type_ (str): "about:blank": the status and title say what happened.
        created (int | Unset): Rows written by an import (0).
        errors (list[LineProblem | ValidationErrorItem] | Unset): What failed: fields of the input (400 for parameters,
            422 for bodies), or the first lines of an imported file.
        field (str | Unset): The conflicting field (409).
        line (int | Unset): The unreadable line of a file (400).
        scopes (list[str] | Unset): The scopes missing (403).
        skipped (int | Unset): Rows an import did not write.
    """

    detail: str
    status: int
    title: str
    type_: str
    created: int | Unset = UNSET
    errors: list[LineProblem | ValidationErrorItem] | Unset = UNSET
    field: str | Unset = UNSET
    line: int | Unset = UNSET
    scopes: list[str] | Unset = UNSET
    skipped: int | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.validation_error_item import ValidationErrorItem  # noqa: PLC0415

        detail = self.detail

        status = self.status

        title = self.title

        type_ = self.type_

        created = self.created

        errors: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.errors, Unset):
            errors = []
            for errors_item_data in self.errors:
                errors_item: dict[str, Any]
                if isinstance(errors_item_data, ValidationErrorItem):
                    errors_item = errors_item_data.to_dict()
                else:
                    errors_item = errors_item_data.to_dict()

                errors.append(errors_item)

        field = self.field

        line = self.line

        scopes: list[str] | Unset = UNSET
        if not isinstance(self.scopes, Unset):
            scopes = self.scopes

        skipped = self.skipped

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "detail": detail,
                "status": status,
                "title": title,
                "type": type_,
            }
        )
        if created is not UNSET:
            field_dict["created"] = created
        if errors is not UNSET:
            field_dict["errors"] = errors
        if field is not UNSET:
            field_dict["field"] = field
        if line is not UNSET:
            field_dict["line"] = line
        if scopes is not UNSET:
            field_dict["scopes"] = scopes
        if skipped is not UNSET:
            field_dict["skipped"] = skipped

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.line_problem import LineProblem  # noqa: PLC0415
        from ..models.validation_error_item import ValidationErrorItem  # noqa: PLC0415

        d = dict(src_dict)
        detail = d.pop("detail")

        status = d.pop("status")

        title = d.pop("title")

        type_ = d.pop("type")

        created = d.pop("created", UNSET)

        _errors = d.pop("errors", UNSET)
        errors: list[LineProblem | ValidationErrorItem] | Unset = UNSET
        if _errors is not UNSET:
            errors = []
            for errors_item_data in _errors:

                def _parse_errors_item(data: object) -> LineProblem | ValidationErrorItem:
                    try:
                        if not isinstance(data, dict):
                            raise TypeError()
                        errors_item_type_0 = ValidationErrorItem.from_dict(data)

                        return errors_item_type_0
                    except (TypeError, ValueError, AttributeError, KeyError):
                        pass
                    if not isinstance(data, dict):
                        raise TypeError()
                    errors_item_type_1 = LineProblem.from_dict(data)

                    return errors_item_type_1

                errors_item = _parse_errors_item(errors_item_data)

                errors.append(errors_item)

        field = d.pop("field", UNSET)

        line = d.pop("line", UNSET)

        scopes = cast(list[str], d.pop("scopes", UNSET))

        skipped = d.pop("skipped", UNSET)

        problem = cls(
            detail=detail,
            status=status,
            title=title,
            type_=type_,
            created=created,
            errors=errors,
            field=field,
            line=line,
            scopes=scopes,
            skipped=skipped,
        )

        problem.additional_properties = d
        return problem

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
