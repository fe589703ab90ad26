"""Schemas shared by every resource: problems, pages, parameter models."""

from typing import Any, ClassVar, Generic, Self, TypeVar

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


class PartialUpdate(InputModel):
    """Base of PATCH/PUT bodies: omitted fields stay as they are, null is not a value."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

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
    """An RFC 9457 problem document; the optional members appear only where they apply."""

    type: str = Field(description='"about:blank": the status and title say what happened.')
    title: str
    status: int
    detail: str
    field: str | None = Field(default=None, description="The conflicting field (409).")
    scopes: list[str] | None = Field(default=None, description="The scopes missing (403).")
    line: int | None = Field(default=None, description="The unreadable line of a file (400).")
    created: int | None = Field(default=None, description="Rows written by an import (0).")
    skipped: int | None = Field(default=None, description="Rows an import did not write.")
    errors: list[ValidationErrorItem | LineProblem] | None = Field(
        default=None,
        description=(
            "What failed: fields of the input (400 for parameters, 422 for bodies), or the "
            "first lines of an imported file."
        ),
    )
