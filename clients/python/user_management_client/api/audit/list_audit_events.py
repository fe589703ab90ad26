import datetime
from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.audit_event_page import AuditEventPage
from ...models.bad_request_problem import BadRequestProblem
from ...models.forbidden_problem import ForbiddenProblem
from ...models.list_audit_events_actor_kind import ListAuditEventsActorKind
from ...models.list_audit_events_sort import ListAuditEventsSort
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    type_: str | Unset = UNSET,
    resource_type: str | Unset = UNSET,
    resource_id: str | Unset = UNSET,
    actor_kind: ListAuditEventsActorKind | Unset = UNSET,
    actor_id: str | Unset = UNSET,
    since: datetime.datetime | Unset = UNSET,
    until: datetime.datetime | Unset = UNSET,
    sort: ListAuditEventsSort | Unset = "-id",
    consistency_token: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(consistency_token, Unset):
        headers["Consistency-Token"] = consistency_token

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["cursor"] = cursor

    params["type"] = type_

    params["resource_type"] = resource_type

    params["resource_id"] = resource_id

    json_actor_kind: str | Unset = UNSET
    if not isinstance(actor_kind, Unset):
        json_actor_kind = actor_kind

    params["actor_kind"] = json_actor_kind

    params["actor_id"] = actor_id

    json_since: str | Unset = UNSET
    if not isinstance(since, Unset):
        json_since = since.isoformat()
    params["since"] = json_since

    json_until: str | Unset = UNSET
    if not isinstance(until, Unset):
        json_until = until.isoformat()
    params["until"] = json_until

    json_sort: str | Unset = UNSET
    if not isinstance(sort, Unset):
        json_sort = sort

    params["sort"] = json_sort

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/audit-events",
        "params": params,
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> AuditEventPage | BadRequestProblem | ForbiddenProblem | Problem | None:
    if response.status_code == 200:
        response_200 = AuditEventPage.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = BadRequestProblem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = ForbiddenProblem.from_dict(response.json())

        return response_403

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = Problem.from_dict(response.json())

        return response_500

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[AuditEventPage | BadRequestProblem | ForbiddenProblem | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    type_: str | Unset = UNSET,
    resource_type: str | Unset = UNSET,
    resource_id: str | Unset = UNSET,
    actor_kind: ListAuditEventsActorKind | Unset = UNSET,
    actor_id: str | Unset = UNSET,
    since: datetime.datetime | Unset = UNSET,
    until: datetime.datetime | Unset = UNSET,
    sort: ListAuditEventsSort | Unset = "-id",
    consistency_token: str | Unset = UNSET,
) -> Response[AuditEventPage | BadRequestProblem | ForbiddenProblem | Problem]:
    """List change events, newest first (or oldest: sort=id), one keyset page at a time.

    Args:
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): Opaque: pass back the `next_cursor` of the previous page unchanged,
            with the same `sort`. A cursor from another sort order, or altered, is a 400.
        type_ (str | Unset):
        resource_type (str | Unset):
        resource_id (str | Unset):
        actor_kind (ListAuditEventsActorKind | Unset):
        actor_id (str | Unset):
        since (datetime.datetime | Unset): occurred_at at or after.
        until (datetime.datetime | Unset): occurred_at before.
        sort (ListAuditEventsSort | Unset): -id: newest first. Default: '-id'.
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AuditEventPage | BadRequestProblem | ForbiddenProblem | Problem]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        type_=type_,
        resource_type=resource_type,
        resource_id=resource_id,
        actor_kind=actor_kind,
        actor_id=actor_id,
        since=since,
        until=until,
        sort=sort,
        consistency_token=consistency_token,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    type_: str | Unset = UNSET,
    resource_type: str | Unset = UNSET,
    resource_id: str | Unset = UNSET,
    actor_kind: ListAuditEventsActorKind | Unset = UNSET,
    actor_id: str | Unset = UNSET,
    since: datetime.datetime | Unset = UNSET,
    until: datetime.datetime | Unset = UNSET,
    sort: ListAuditEventsSort | Unset = "-id",
    consistency_token: str | Unset = UNSET,
) -> AuditEventPage | BadRequestProblem | ForbiddenProblem | Problem | None:
    """List change events, newest first (or oldest: sort=id), one keyset page at a time.

    Args:
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): Opaque: pass back the `next_cursor` of the previous page unchanged,
            with the same `sort`. A cursor from another sort order, or altered, is a 400.
        type_ (str | Unset):
        resource_type (str | Unset):
        resource_id (str | Unset):
        actor_kind (ListAuditEventsActorKind | Unset):
        actor_id (str | Unset):
        since (datetime.datetime | Unset): occurred_at at or after.
        until (datetime.datetime | Unset): occurred_at before.
        sort (ListAuditEventsSort | Unset): -id: newest first. Default: '-id'.
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AuditEventPage | BadRequestProblem | ForbiddenProblem | Problem
    """

    return sync_detailed(
        client=client,
        limit=limit,
        cursor=cursor,
        type_=type_,
        resource_type=resource_type,
        resource_id=resource_id,
        actor_kind=actor_kind,
        actor_id=actor_id,
        since=since,
        until=until,
        sort=sort,
        consistency_token=consistency_token,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    type_: str | Unset = UNSET,
    resource_type: str | Unset = UNSET,
    resource_id: str | Unset = UNSET,
    actor_kind: ListAuditEventsActorKind | Unset = UNSET,
    actor_id: str | Unset = UNSET,
    since: datetime.datetime | Unset = UNSET,
    until: datetime.datetime | Unset = UNSET,
    sort: ListAuditEventsSort | Unset = "-id",
    consistency_token: str | Unset = UNSET,
) -> Response[AuditEventPage | BadRequestProblem | ForbiddenProblem | Problem]:
    """List change events, newest first (or oldest: sort=id), one keyset page at a time.

    Args:
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): Opaque: pass back the `next_cursor` of the previous page unchanged,
            with the same `sort`. A cursor from another sort order, or altered, is a 400.
        type_ (str | Unset):
        resource_type (str | Unset):
        resource_id (str | Unset):
        actor_kind (ListAuditEventsActorKind | Unset):
        actor_id (str | Unset):
        since (datetime.datetime | Unset): occurred_at at or after.
        until (datetime.datetime | Unset): occurred_at before.
        sort (ListAuditEventsSort | Unset): -id: newest first. Default: '-id'.
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AuditEventPage | BadRequestProblem | ForbiddenProblem | Problem]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        type_=type_,
        resource_type=resource_type,
        resource_id=resource_id,
        actor_kind=actor_kind,
        actor_id=actor_id,
        since=since,
        until=until,
        sort=sort,
        consistency_token=consistency_token,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    type_: str | Unset = UNSET,
    resource_type: str | Unset = UNSET,
    resource_id: str | Unset = UNSET,
    actor_kind: ListAuditEventsActorKind | Unset = UNSET,
    actor_id: str | Unset = UNSET,
    since: datetime.datetime | Unset = UNSET,
    until: datetime.datetime | Unset = UNSET,
    sort: ListAuditEventsSort | Unset = "-id",
    consistency_token: str | Unset = UNSET,
) -> AuditEventPage | BadRequestProblem | ForbiddenProblem | Problem | None:
    """List change events, newest first (or oldest: sort=id), one keyset page at a time.

    Args:
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): Opaque: pass back the `next_cursor` of the previous page unchanged,
            with the same `sort`. A cursor from another sort order, or altered, is a 400.
        type_ (str | Unset):
        resource_type (str | Unset):
        resource_id (str | Unset):
        actor_kind (ListAuditEventsActorKind | Unset):
        actor_id (str | Unset):
        since (datetime.datetime | Unset): occurred_at at or after.
        until (datetime.datetime | Unset): occurred_at before.
        sort (ListAuditEventsSort | Unset): -id: newest first. Default: '-id'.
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AuditEventPage | BadRequestProblem | ForbiddenProblem | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            limit=limit,
            cursor=cursor,
            type_=type_,
            resource_type=resource_type,
            resource_id=resource_id,
            actor_kind=actor_kind,
            actor_id=actor_id,
            since=since,
            until=until,
            sort=sort,
            consistency_token=consistency_token,
        )
    ).parsed
