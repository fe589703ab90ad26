from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.bad_request_problem import BadRequestProblem
from ...models.forbidden_problem import ForbiddenProblem
from ...models.list_mail_messages_state import ListMailMessagesState
from ...models.page_mail_message_read import PageMailMessageRead
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    state: ListMailMessagesState | Unset = UNSET,
    consistency_token: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(consistency_token, Unset):
        headers["Consistency-Token"] = consistency_token

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["cursor"] = cursor

    json_state: str | Unset = UNSET
    if not isinstance(state, Unset):
        json_state = state

    params["state"] = json_state

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/mail-messages",
        "params": params,
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> BadRequestProblem | ForbiddenProblem | PageMailMessageRead | Problem | None:
    if response.status_code == 200:
        response_200 = PageMailMessageRead.from_dict(response.json())

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
) -> Response[BadRequestProblem | ForbiddenProblem | PageMailMessageRead | Problem]:
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
    state: ListMailMessagesState | Unset = UNSET,
    consistency_token: str | Unset = UNSET,
) -> Response[BadRequestProblem | ForbiddenProblem | PageMailMessageRead | Problem]:
    """List queued mail and its delivery state, newest first (optionally of one state).

    Args:
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): Opaque: pass back the `next_cursor` of the previous page unchanged,
            with the same `sort`. A cursor from another sort order, or altered, is a 400.
        state (ListMailMessagesState | Unset):
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BadRequestProblem | ForbiddenProblem | PageMailMessageRead | Problem]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        state=state,
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
    state: ListMailMessagesState | Unset = UNSET,
    consistency_token: str | Unset = UNSET,
) -> BadRequestProblem | ForbiddenProblem | PageMailMessageRead | Problem | None:
    """List queued mail and its delivery state, newest first (optionally of one state).

    Args:
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): Opaque: pass back the `next_cursor` of the previous page unchanged,
            with the same `sort`. A cursor from another sort order, or altered, is a 400.
        state (ListMailMessagesState | Unset):
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BadRequestProblem | ForbiddenProblem | PageMailMessageRead | Problem
    """

    return sync_detailed(
        client=client,
        limit=limit,
        cursor=cursor,
        state=state,
        consistency_token=consistency_token,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    state: ListMailMessagesState | Unset = UNSET,
    consistency_token: str | Unset = UNSET,
) -> Response[BadRequestProblem | ForbiddenProblem | PageMailMessageRead | Problem]:
    """List queued mail and its delivery state, newest first (optionally of one state).

    Args:
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): Opaque: pass back the `next_cursor` of the previous page unchanged,
            with the same `sort`. A cursor from another sort order, or altered, is a 400.
        state (ListMailMessagesState | Unset):
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BadRequestProblem | ForbiddenProblem | PageMailMessageRead | Problem]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        state=state,
        consistency_token=consistency_token,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    state: ListMailMessagesState | Unset = UNSET,
    consistency_token: str | Unset = UNSET,
) -> BadRequestProblem | ForbiddenProblem | PageMailMessageRead | Problem | None:
    """List queued mail and its delivery state, newest first (optionally of one state).

    Args:
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): Opaque: pass back the `next_cursor` of the previous page unchanged,
            with the same `sort`. A cursor from another sort order, or altered, is a 400.
        state (ListMailMessagesState | Unset):
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BadRequestProblem | ForbiddenProblem | PageMailMessageRead | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            limit=limit,
            cursor=cursor,
            state=state,
            consistency_token=consistency_token,
        )
    ).parsed
