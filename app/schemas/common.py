"""Schemas shared by every resource: problems, pages, parameter models."""

import copy
import unicodedata
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

T = TypeVar("T")

# One line: no leading/trailing whitespace and no control characters anywhere.
TRIMMED_LINE_PATTERN = (
    r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
)
# Characters a name may not hold anywhere: they show nothing, or move or break the text around
# them, so two names that look alike would differ by them. Unicode's controls (Cc), format
# characters (Cf: zero-width spaces and joiners, bidi overrides and isolates, the byte order
# mark, tags), private-use code points (Co: no agreed glyph), the line and paragraph
# separators (Zl, Zp), and the Hangul fillers, letters that render as nothing. Surrogates
# (Cs) are left out: pydantic refuses them itself, and a regex cannot name them. Unassigned
# code points (Cn) are allowed: refusing them would tie a name's validity to the Unicode
# version of the Python that runs, and the OpenAPI pattern could not say which.
# tests/schemas/test_usernames.py checks these ranges against this Python's Unicode data.
INVISIBLE_RANGES = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x115F, 0x1160),
    (0x180E, 0x180E), (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F),
    (0x3164, 0x3164), (0xE000, 0xF8FF), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F), (0xF0000, 0xFFFFD),
    (0x100000, 0x10FFFD),
)  # fmt: skip


_BMP_LAST = 0xFFFF


def _class_member(code: int) -> str:
    # \uHHHH reads the same to Python's re, Rust's regex (pydantic-core) and ECMAScript (the
    # OpenAPI document's dialect); past the BMP they share no escape, only the character.
    return f"\\u{code:04x}" if code <= _BMP_LAST else chr(code)


_INVISIBLE = "".join(
    _class_member(low) if low == high else f"{_class_member(low)}-{_class_member(high)}"
    for low, high in INVISIBLE_RANGES
)
# A name: one line as TRIMMED_LINE_PATTERN says, and no invisible character anywhere.
NAME_PATTERN = rf"^[^\s{_INVISIBLE}](?:[^{_INVISIBLE}]*[^\s{_INVISIBLE}])?$"


# What a name that NAME_PATTERN refuses is told: the pattern itself is long and holds the
# very characters it refuses.
NAME_RULE = (
    "String should be one line without spaces at either end, and without invisible "
    "characters: controls, format characters (zero-width, bidirectional), line or paragraph "
    "separators, private-use characters"
)


# Names are compared as stored, so "José" typed precomposed and typed as "e" and a combining
# accent must be stored alike: NFC, the form nearly every keyboard already sends. Not NFKC,
# which would also rewrite what was typed (full-width letters to ASCII ones, "x²" to "x2",
# the ligature "ﬁ" to "fi") and would still not catch look-alikes across scripts.
def nfc(value: str) -> str:
    """Return the string in Unicode NFC form."""
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def nfc_name(max_length: int) -> WrapValidator:
    """Check a name as sent (a refused one is told NAME_RULE), then return it in NFC."""

    # The constraints see the value as sent, as the OpenAPI document says; NFC keeps a
    # valid name valid (it neither adds nor drops an invisible character or an edge
    # space), except that it may lengthen it: "\u0958" is two code points in NFC.
    def validate(value: object, handler: ValidatorFunctionWrapHandler) -> str:
        try:
            name: str = nfc(handler(value))
        except ValidationError as error:
            if any(item["type"] == "string_pattern_mismatch" for item in error.errors()):
                raise PydanticCustomError("string_pattern_mismatch", NAME_RULE) from None
            raise
        if len(name) > max_length:
            raise PydanticCustomError(
                "string_too_long",
                "String should have at most {max_length} characters in Unicode NFC form",
                {"max_length": max_length},
            )
        return name

    return WrapValidator(validate)


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
    """Base of request bodies: unknown fields are rejected. ``EXAMPLES``: the body the
    OpenAPI document shows for its operations (tests/test_openapi.py checks the API takes it)."""

    EXAMPLES: ClassVar[tuple[dict[str, Any], ...]] = ()
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Hand the first example to flask-openapi3, which puts it on the request body."""
        super().__pydantic_init_subclass__(**kwargs)
        # A body a reader recognises (the tutorial's): /docs' "Try it out" proposed a
        # username made from the pattern. flask-openapi3 reads it from this config key.
        if cls.EXAMPLES:
            cls.model_config["openapi_extra"] = {"example": cls.EXAMPLES[0]}  # type: ignore[typeddict-unknown-key]


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


class NotReadyProblem(Problem):
    """503 from GET /readyz: why this replica cannot serve (each cause is logged once)."""

    status: Literal[503]
    reason: Literal["unreachable", "not_migrated", "behind"] = Field(
        description="unreachable: no answer from the database; not_migrated: it answers but "
        "has no schema (run the migrations); behind: its schema is an older release's."
    )


# The problem each error status documents, unless an operation names its own.
PROBLEM_OF_STATUS: dict[int, type[Problem]] = {
    400: BadRequestProblem,
    403: ForbiddenProblem,
    409: ConflictProblem,
    422: ValidationProblem,
}
