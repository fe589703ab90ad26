from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.forbidden_problem import ForbiddenProblem
from ...models.key_who_am_i import KeyWhoAmI
from ...models.problem import Problem
from ...models.user_who_am_i import UserWhoAmI
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    consistency_token: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(consistency_token, Unset):
        headers["Consistency-Token"] = consistency_token

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/auth/whoami",
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ForbiddenProblem | KeyWhoAmI | UserWhoAmI | Problem | None:
    if response.status_code == 200:

        def _parse_response_200(data: object) -> KeyWhoAmI | UserWhoAmI:
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_who_am_i_type_0 = KeyWhoAmI.from_dict(data)

                return componentsschemas_who_am_i_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            componentsschemas_who_am_i_type_1 = UserWhoAmI.from_dict(data)

            return componentsschemas_who_am_i_type_1

        response_200 = _parse_response_200(response.json())

        return response_200

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
) -> Response[ForbiddenProblem | KeyWhoAmI | UserWhoAmI | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    consistency_token: str | Unset = UNSET,
) -> Response[ForbiddenProblem | KeyWhoAmI | UserWhoAmI | Problem]:
    """Describe the API key or the signed-in user that made this request.

    Args:
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ForbiddenProblem | KeyWhoAmI | UserWhoAmI | Problem]
    """

    kwargs = _get_kwargs(
        consistency_token=consistency_token,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    consistency_token: str | Unset = UNSET,
) -> ForbiddenProblem | KeyWhoAmI | UserWhoAmI | Problem | None:
    """Describe the API key or the signed-in user that made this request.

    Args:
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ForbiddenProblem | KeyWhoAmI | UserWhoAmI | Problem
    """

    return sync_detailed(
        client=client,
        consistency_token=consistency_token,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    consistency_token: str | Unset = UNSET,
) -> Response[ForbiddenProblem | KeyWhoAmI | UserWhoAmI | Problem]:
    """Describe the API key or the signed-in user that made this request.

    Args:
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ForbiddenProblem | KeyWhoAmI | UserWhoAmI | Problem]
    """

    kwargs = _get_kwargs(
        consistency_token=consistency_token,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    consistency_token: str | Unset = UNSET,
) -> ForbiddenProblem | KeyWhoAmI | UserWhoAmI | Problem | None:
    """Describe the API key or the signed-in user that made this request.

    Args:
        consistency_token (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ForbiddenProblem | KeyWhoAmI | UserWhoAmI | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            consistency_token=consistency_token,
        )
    ).parsed
