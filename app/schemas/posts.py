"""Request and response bodies and parameters of the posts resource."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.models.post import BODY_MAX, TITLE_MAX
from app.schemas.common import (
    MAX_ID,
    TEXT_PATTERN,
    TRIMMED_LINE_PATTERN,
    InputModel,
    OutputModel,
    Page,
    PageQuery,
    ParameterModel,
    PartialUpdate,
)

Title = Annotated[
    str, StringConstraints(min_length=1, max_length=TITLE_MAX, pattern=TRIMMED_LINE_PATTERN)
]
Body = Annotated[str, StringConstraints(max_length=BODY_MAX, pattern=TEXT_PATTERN)]
PostSort = Literal["id", "-id", "created_at", "-created_at"]


class PostCreate(InputModel):
    """Body of POST /users/{user_id}/posts."""

    EXAMPLES = ({"title": "Hello, world", "body": "My first post."},)

    title: Title
    body: Body


class PostUpdate(PartialUpdate):
    """Body of PATCH and PUT /posts/{post_id}: omitted fields stay as they are."""

    EXAMPLES = ({"title": "Hello again"},)

    title: Title | None = None
    body: Body | None = None


class AuthorRead(OutputModel):
    """The author embedded in a post."""

    id: int
    username: str


class PostRead(OutputModel):
    """A post as the API returns it, with its author."""

    id: int
    author_id: int
    author: AuthorRead
    title: str
    body: str
    created_at: datetime
    updated_at: datetime


class PostPage(Page[PostRead]):
    """A page of posts."""


class PostPath(ParameterModel):
    """Path of /posts/{post_id}."""

    location = "path"
    post_id: int = Field(ge=1)


class PostListQuery(PageQuery):
    """Query string of GET /posts."""

    sort: PostSort = "id"
    author_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Only this user's posts."
    )


class UserPostsQuery(PageQuery):
    """Query string of GET /users/{user_id}/posts."""

    sort: PostSort = "id"
