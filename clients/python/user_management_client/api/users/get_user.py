from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.forbidden_problem import ForbiddenProblem
from ...models.problem import Problem
from ...models.user_read import UserRead
from ...types import UNSET, Response, Unset


def _get_kwargs(
    user_id: int,
    *,
    if_none_match: str | Unset = UNSET,
    consistency_token: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(if_none_match, Unset):
        headers["If-None-Match"] = if_none_match

    if not isinstance(consistency_token, Unset):
        headers["Consistency-Token"] = consistency_token

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/users/{user_id}".format(
            user_id=quote(str(user_id), safe=""),
        ),
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | ForbiddenProblem | Problem | UserRead | None:
    if response.status_code == 200:
        response_200 = UserRead.from_dict(response.json())

        return response_200

    if response.status_code == 304:
        response_304 = cast(Any, None)
        return response_304

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = ForbiddenProblem.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

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
) -> Response[Any | ForbiddenProblem | Problem | UserRead]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    user_id: int,
    *,
    client: AuthenticatedClient,
    if_none_match: str | Unset = UNSET,
    consistency_token: str | Unset = UNSET,
) -> Response[Any | ForbiddenProblem | Problem | UserRead]:
    """Get one user (304 where If-None-Match names its ETag).

    Args:
        user_id (int):
        if_none_match (str | Unset):
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ForbiddenProblem | Problem | UserRead]
    """

    kwargs = _get_kwargs(
        user_id=user_id,
        if_none_match=if_none_match,
        consistency_token=consistency_token,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    user_id: int,
    *,
    client: AuthenticatedClient,
    if_none_match: str | Unset = UNSET,
    consistency_token: str | Unset = UNSET,
) -> Any | ForbiddenProblem | Problem | UserRead | None:
    """Get one user (304 where If-None-Match names its ETag).

    Args:
        user_id (int):
        if_none_match (str | Unset):
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ForbiddenProblem | Problem | UserRead
    """

    return sync_detailed(
        user_id=user_id,
        client=client,
        if_none_match=if_none_match,
        consistency_token=consistency_token,
    ).parsed


async def asyncio_detailed(
    user_id: int,
    *,
    client: AuthenticatedClient,
    if_none_match: str | Unset = UNSET,
    consistency_token: str | Unset = UNSET,
) -> Response[Any | ForbiddenProblem | Problem | UserRead]:
    """Get one user (304 where If-None-Match names its ETag).

    Args:
        user_id (int):
        if_none_match (str | Unset):
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ForbiddenProblem | Problem | UserRead]
    """

    kwargs = _get_kwargs(
        user_id=user_id,
        if_none_match=if_none_match,
        consistency_token=consistency_token,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    user_id: int,
    *,
    client: AuthenticatedClient,
    if_none_match: str | Unset = UNSET,
    consistency_token: str | Unset = UNSET,
) -> Any | ForbiddenProblem | Problem | UserRead | None:
    """Get one user (304 where If-None-Match names its ETag).

    Args:
        user_id (int):
        if_none_match (str | Unset):
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ForbiddenProblem | Problem | UserRead
    """

    return (
        await asyncio_detailed(
            user_id=user_id,
            client=client,
            if_none_match=if_none_match,
            consistency_token=consistency_token,
        )
    ).parsed
