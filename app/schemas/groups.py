"""Request and response bodies and parameters of groups and their members."""

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from app.models.group import GROUP_NAME_MAX
from app.schemas.common import (
    NAME_PATTERN,
    InputModel,
    OutputModel,
    Page,
    PageQuery,
    ParameterModel,
    PartialUpdate,
    nfc_name,
)
from app.schemas.scopes import Scope

# Stored and compared in NFC, as a username is (app.schemas.users says why).
GroupName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=GROUP_NAME_MAX, pattern=NAME_PATTERN),
    nfc_name(GROUP_NAME_MAX),
]
Scopes = Annotated[
    list[Scope],
    Field(max_length=32, description="Granted to every member's access token; repeats ignored."),
]


class GroupCreate(InputModel):
    """Body of POST /groups."""

    EXAMPLES = ({"name": "editors", "scopes": ["users:read", "posts:read", "posts:write"]},)

    name: GroupName
    scopes: Scopes


class GroupUpdate(PartialUpdate):
    """Body of PATCH /groups/{id}: omitted fields stay as they are."""

    EXAMPLES = ({"scopes": ["users:read", "posts:read"]},)

    name: GroupName | None = None
    scopes: Scopes | None = None


class GroupRead(OutputModel):
    """A group as the API returns it."""

    id: int
    name: str
    scopes: list[str]
    created_at: datetime
    updated_at: datetime


class GroupPage(Page[GroupRead]):
    """A page of groups."""


class GroupListQuery(PageQuery):
    """Query string of GET /groups (by id)."""


class MemberListQuery(PageQuery):
    """Query string of GET /groups/{group_id}/members (users by id)."""


class GroupPath(ParameterModel):
    """Path of /groups/{group_id}."""

    location = "path"
    group_id: int = Field(ge=1)


class MemberPath(ParameterModel):
    """Path of /groups/{group_id}/members/{user_id}."""

    location = "path"
    group_id: int = Field(ge=1)
    user_id: int = Field(ge=1)
