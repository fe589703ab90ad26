"""Schemas shared by every resource: problems, pages, parameter models."""

import copy
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

T = TypeVar("T")

# One line: no leading/trailing whitespace and no control characters anywhere.
TRIMMED_LINE_PATTERN = (
    r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
)
# Ids are 64-bit; larger numbers can name nothing.
MAX_ID = 2**63 - 1
# Free text: anything but NUL, which PostgreSQL's text type cannot hold.
TEXT_PATTERN = r"^[^\x00]*$"

# The row versions an If-Match allows, one tuple per tag (a post's holds its author's
# version too); None: no condition (app.api.conditional makes them, the services check them).
Versions = list[tuple[int, ...]] | None

# Query and path models by class name: their validation errors are 400s, not 422s.
PARAMETER_MODELS: dict[str, str] = {}


_schema_cache: dict[tuple[type[BaseModel], tuple[Any, ...], frozenset[Any]], dict[str, Any]] = {}


class ParameterModel(BaseModel):
    """Base of query-string and path models; unknown parameters are rejected."""

    model_config = ConfigDict(extra="forbid")
    location: ClassVar[str] = "query"

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Return the JSON schema, made once per model and arguments.

        flask-openapi3 asks for a query model's schema on every request to read the
        field types (about 1 ms each time); the schema of a class never changes.
        """
        key = (cls, args, frozenset(kwargs.items()))
        schema = _schema_cache.get(key)
        if schema is None:
            schema = _schema_cache[key] = super().model_json_schema(*args, **kwargs)
        return schema

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Register the model so its errors are reported as bad parameters."""
        super().__pydantic_init_subclass__(**kwargs)
        PARAMETER_MODELS[cls.__name__] = cls.location


class PageQuery(ParameterModel):
    """Paging parameters shared by every list."""

    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^[A-Za-z0-9_-]*$",
        description="next_cursor of the previous page, as given.",
    )


class InputModel(BaseModel):
    """Base of request bodies: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")


def _at_least_one_member(schema: dict[str, Any]) -> None:
    # "At least one member" in a form generated clients type: openapi-typescript ignores
    # minProperties (an empty update type-checked, then was a 422), but not a union of
    # objects that each require one member. The members move into the variants: beside
    # them, "properties" would make a variant of its own that takes {}.
    properties = schema.pop("properties", {})
    del schema["additionalProperties"]
    schema["minProperties"] = 1
    schema["anyOf"] = [
        {
            "type": "object",
            "properties": copy.deepcopy(properties),
            "required": [name],
            "additionalProperties": False,
        }
        for name in properties
    ]


class PartialUpdate(InputModel):
    """Base of PATCH/PUT bodies: omitted fields stay as they are, null is not a value."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_at_least_one_member)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            msg = "may be omitted but not null"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            msg = f"give at least one of: {', '.join(type(self).model_fields)}"
            raise ValueError(msg)
        return self


class OutputModel(BaseModel):
    """Base of response bodies, read from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


class Page(OutputModel, Generic[T]):
    """One page of a keyset-paginated list."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Opaque cursor for the next page with the same sort; null on the last page."
    )


class ValidationErrorItem(BaseModel):
    """One failed check; the submitted value is never echoed."""

    loc: list[str | int]
    msg: str
    type: str


class LineProblem(BaseModel):
    """What is wrong with one line of an imported file."""

    line: int
    problem: str


class Problem(BaseModel):
    """An RFC 9457 problem document; the statuses below have their own, with more members."""

    type: str = Field(description='"about:blank": the status and title say what happened.')
    title: str
    # Literal, here and below: a generated client narrows an error by its status.
    status: Literal[401, 404, 406, 408, 412, 413, 415, 429, 500, 503]
    detail: str


class BadRequestProblem(Problem):
    """400: bad parameters (``errors``), or an unreadable line of an imported file (``line``)."""

    status: Literal[400]  # type: ignore[assignment]
    errors: list[ValidationErrorItem] | None = Field(
        default=None, description="The parameters that failed their checks."
    )
    line: int | None = Field(default=None, description="The unreadable line of a file.")


class ForbiddenProblem(Problem):
    """403: the API key lacks scopes this operation needs."""

    status: Literal[403]  # type: ignore[assignment]
    scopes: list[str] = Field(description="The scopes missing.")


class ConflictProblem(Problem):
    """409: a unique field is taken (``field``), or a concurrent write won; retry it."""

    status: Literal[409]  # type: ignore[assignment]
    field: str | None = Field(default=None, description="The field whose value is taken.")


class ValidationProblem(Problem):
    """422: the body failed validation; ``errors`` says where."""

    status: Literal[422]  # type: ignore[assignment]
    errors: list[ValidationErrorItem]


class ImportProblem(Problem):
    """409 (duplicates) or 422 (invalid rows) from an all-or-nothing import: nothing written."""

    status: Literal[409, 422]  # type: ignore[assignment]
    created: int = Field(description="Rows written: 0.")
    skipped: int = Field(description="Rows not written.")
    errors: list[LineProblem] = Field(description="The first lines that failed, and why.")


# The problem each error status documents, unless an operation names its own.
PROBLEM_OF_STATUS: dict[int, type[Problem]] = {
    400: BadRequestProblem,
    403: ForbiddenProblem,
    409: ConflictProblem,
    422: ValidationProblem,
}
