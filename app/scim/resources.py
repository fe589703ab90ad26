"""Our users and groups as SCIM resources (scim2-models), and what the service advertises.

A SCIM user is the row /users/{id} serves: userName is the username, the one email is the
primary work email, and externalId, displayName, name.givenName and name.familyName are
columns of their own. A SCIM group is a /groups/{id} group (its scopes are granted through
/groups). What we do not store is refused with a 400 naming it, and left out of /Schemas, so
nothing an identity provider sends is accepted and then lost.
"""

from typing import Any

from flask import url_for
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    Email,
    ETag,
    Filter,
    Group,
    GroupMember,
    InvalidValueException,
    Meta,
    Name,
    Pagination,
    Patch,
    Required,
    ResourceType,
    Schema,
    ServiceProviderConfig,
    Sort,
    User,
)
from sqlalchemy import Row

from app.api.conditional import etag
from app.config import current_settings

MAX_RESULTS = 100  # a page of a list, as /users's limit
MAX_BULK_OPERATIONS = 1000  # a bulk request's body is bounded by MAX_CONTENT_LENGTH too

# What each resource takes, by scim2-models field name; anything else set is refused.
USER_FIELDS = frozenset(
    {"schemas", "id", "external_id", "meta", "user_name", "name", "display_name", "emails"}
    | {"active", "password", "groups"}
)
NAME_FIELDS = frozenset({"given_name", "family_name"})
EMAIL_FIELDS = frozenset({"value", "type", "primary"})
GROUP_FIELDS = frozenset({"schemas", "id", "external_id", "meta", "display_name", "members"})
MEMBER_FIELDS = frozenset({"value", "ref", "type", "display"})

# The attribute names /Schemas advertises (scim2-models' schema of each, narrowed to these).
_ADVERTISED = {
    "User": {"userName", "name", "displayName", "emails", "active", "password", "externalId"},
    "Group": {"displayName", "members", "externalId"},
}
_SUB_ADVERTISED = {
    "name": {"givenName", "familyName"},
    "emails": {"value", "type"},
    "members": {"value", "$ref", "type"},
}


def _unsupported(model: Any, allowed: frozenset[str], prefix: str = "") -> list[str]:
    return sorted(prefix + name for name in model.model_fields_set - allowed)


def _refuse(names: list[str]) -> None:
    if names:
        shown = ", ".join(names)
        raise InvalidValueException(detail=f"Not supported here, so not accepted: {shown}.")


def user_fields(user: User[Any]) -> dict[str, Any]:
    """The columns a SCIM user sets (its password apart), or InvalidValueException."""
    unsupported = _unsupported(user, USER_FIELDS)
    if user.name is not None:
        unsupported += _unsupported(user.name, NAME_FIELDS, "name.")
    for each in user.emails or []:
        unsupported += _unsupported(each, EMAIL_FIELDS, "emails.")
    _refuse(sorted(set(unsupported)))
    emails = {str(each.value): each.type for each in user.emails or [] if each.value}
    if len(emails) > 1:
        raise InvalidValueException(detail="A user has one email here; send one value.")
    if not emails:
        raise InvalidValueException(detail="emails: one email value is required here.")
    [(address, email_type)] = emails.items()
    return {
        "username": user.user_name,
        "email": address,
        "email_type": None if email_type is None else str(email_type),
        "active": True if user.active is None else user.active,
        "external_id": user.external_id,
        "display_name": user.display_name,
        "given_name": user.name.given_name if user.name else None,
        "family_name": user.name.family_name if user.name else None,
    }


def group_fields(group: Group) -> tuple[dict[str, Any], list[int] | None]:
    """The columns a SCIM group sets and its member ids (None: members not given)."""
    unsupported = _unsupported(group, GROUP_FIELDS)
    for member in group.members or []:
        unsupported += _unsupported(member, MEMBER_FIELDS, "members.")
    _refuse(sorted(set(unsupported)))
    ids = None if group.members is None else member_ids(group.members)
    return {"name": group.display_name, "external_id": group.external_id}, ids


def member_ids(members: list[GroupMember]) -> list[int]:
    """The user ids of these members; a value that names no user of ours is refused."""
    ids = []
    for member in members:
        value = str(member.value or "")
        if not value.isdigit() or not 0 < int(value) < 2**63:
            raise InvalidValueException(detail=f"members: {value!r} is not a user id here.")
        ids.append(int(value))
    return ids


def _meta(kind: str, row: Row[Any], endpoint: str, **values: Any) -> Meta:
    return Meta(
        resource_type=kind,
        created=row.created_at,
        last_modified=row.updated_at,
        location=url_for(endpoint, _external=True, **values),
        version=etag(row.version),
    )


def user_resource(row: Row[Any]) -> User[Any]:
    """The user row as a SCIM user."""
    name = None
    if row.given_name is not None or row.family_name is not None:
        name = Name(given_name=row.given_name, family_name=row.family_name)
    return User(
        id=str(row.id),
        external_id=row.external_id,
        meta=_meta("User", row, "scim.get_user", user_id=row.id),
        user_name=row.username,
        name=name,
        display_name=row.display_name,
        emails=[Email(value=row.email, type=row.email_type)],
        active=row.active,
    )


def group_resource(row: Row[Any], members: list[int] | None) -> Group:
    """The group row as a SCIM group, with its members when read."""
    return Group(
        id=str(row.id),
        external_id=row.external_id,
        meta=_meta("Group", row, "scim.get_group", group_id=row.id),
        display_name=row.name,
        members=None
        if members is None
        else [
            GroupMember(
                value=str(user_id),
                ref=url_for("scim.get_user", user_id=user_id, _external=True),
                type="User",
            )
            for user_id in members
        ],
    )


# Stored as NOT NULL here, so a user needs them: one email, and whether it is active (an
# absent active is read as true on creation, as /users does).
_REQUIRED = {"emails", "active"}


def _narrowed(schema: Schema, kind: str) -> Schema:
    attributes = [a for a in schema.attributes or [] if a.name in _ADVERTISED[kind]]
    for attribute in attributes:
        if kind == "User" and attribute.name in _REQUIRED:
            attribute.required = Required.true
            for sub in attribute.sub_attributes or []:
                if sub.name == "value":
                    sub.required = Required.true
    for attribute in attributes:
        allowed = _SUB_ADVERTISED.get(str(attribute.name))
        if allowed is not None and attribute.sub_attributes:
            attribute.sub_attributes = [
                sub for sub in attribute.sub_attributes if sub.name in allowed
            ]
    schema.attributes = attributes
    return schema


def schemas() -> list[Schema]:
    """The User and Group schemas, narrowed to what is stored."""
    found = []
    for model, kind in ((User, "User"), (Group, "Group")):
        schema = _narrowed(model.to_schema(), kind)
        schema.meta = Meta(
            resource_type="Schema",
            location=url_for("scim.get_schema", schema_id=str(schema.id), _external=True),
        )
        found.append(schema)
    return found


def resource_types() -> list[ResourceType]:
    """User and Group."""
    found = []
    for model, kind in ((User, "User"), (Group, "Group")):
        resource_type = ResourceType.from_resource(model)
        resource_type.meta = Meta(
            resource_type="ResourceType",
            location=url_for("scim.get_resource_type", type_id=kind, _external=True),
        )
        found.append(resource_type)
    return found


def config() -> ServiceProviderConfig:
    """What this service supports (RFC 7643 5)."""
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(
            supported=True,
            max_operations=MAX_BULK_OPERATIONS,
            max_payload_size=current_settings().MAX_CONTENT_LENGTH,
        ),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        pagination=Pagination(
            cursor=True,
            index=True,
            default_pagination_method=Pagination.DefaultPaginationMethod.index,
            default_page_size=MAX_RESULTS,
            max_page_size=MAX_RESULTS,
        ),
        change_password=ChangePassword(supported=True),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="API key",
                description="Authorization: Bearer <an API key with the scim scope>",
                primary=True,
            )
        ],
        meta=Meta(
            resource_type="ServiceProviderConfig",
            location=url_for("scim.get_config", _external=True),
        ),
    )


def dump(resource: Any, context: Context, **kwargs: Any) -> dict[str, Any]:
    """A resource or message as SCIM JSON for ``context``."""
    result: dict[str, Any] = resource.model_dump(scim_ctx=context, **kwargs)
    return result
