from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.bad_request_problem import BadRequestProblem
from ...models.conflict_problem import ConflictProblem
from ...models.forbidden_problem import ForbiddenProblem
from ...models.me_update import MeUpdate
from ...models.problem import Problem
from ...models.user_read import UserRead
from ...models.validation_problem import ValidationProblem
from ...types import Response


def _get_kwargs(
    *,
    body: MeUpdate,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/me",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> BadRequestProblem | ConflictProblem | ForbiddenProblem | Problem | UserRead | ValidationProblem | None:
    if response.status_code == 200:
        response_200 = UserRead.from_dict(response.json())

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

    if response.status_code == 409:
        response_409 = ConflictProblem.from_dict(response.json())

        return response_409

    if response.status_code == 412:
        response_412 = Problem.from_dict(response.json())

        return response_412

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

    if response.status_code == 422:
        response_422 = ValidationProblem.from_dict(response.json())

        return response_422

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
) -> Response[BadRequestProblem | ConflictProblem | ForbiddenProblem | Problem | UserRead | ValidationProblem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: MeUpdate,
) -> Response[BadRequestProblem | ConflictProblem | ForbiddenProblem | Problem | UserRead | ValidationProblem]:
    """Change the signed-in user's username or email; omitted fields stay as they are.

     <br/>A new email takes effect only once it is confirmed: the response still shows the old<br/>one,
    and the new address is mailed a link (POST /auth/email-verification/confirm).

    Args:
        body (MeUpdate): Body of PATCH /me: omitted fields stay as they are.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BadRequestProblem | ConflictProblem | ForbiddenProblem | Problem | UserRead | ValidationProblem]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: MeUpdate,
) -> BadRequestProblem | ConflictProblem | ForbiddenProblem | Problem | UserRead | ValidationProblem | None:
    """Change the signed-in user's username or email; omitted fields stay as they are.

     <br/>A new email takes effect only once it is confirmed: the response still shows the old<br/>one,
    and the new address is mailed a link (POST /auth/email-verification/confirm).

    Args:
        body (MeUpdate): Body of PATCH /me: omitted fields stay as they are.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BadRequestProblem | ConflictProblem | ForbiddenProblem | Problem | UserRead | ValidationProblem
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: MeUpdate,
) -> Response[BadRequestProblem | ConflictProblem | ForbiddenProblem | Problem | UserRead | ValidationProblem]:
    """Change the signed-in user's username or email; omitted fields stay as they are.

     <br/>A new email takes effect only once it is confirmed: the response still shows the old<br/>one,
    and the new address is mailed a link (POST /auth/email-verification/confirm).

    Args:
        body (MeUpdate): Body of PATCH /me: omitted fields stay as they are.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BadRequestProblem | ConflictProblem | ForbiddenProblem | Problem | UserRead | ValidationProblem]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: MeUpdate,
) -> BadRequestProblem | ConflictProblem | ForbiddenProblem | Problem | UserRead | ValidationProblem | None:
    """Change the signed-in user's username or email; omitted fields stay as they are.

     <br/>A new email takes effect only once it is confirmed: the response still shows the old<br/>one,
    and the new address is mailed a link (POST /auth/email-verification/confirm).

    Args:
        body (MeUpdate): Body of PATCH /me: omitted fields stay as they are.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BadRequestProblem | ConflictProblem | ForbiddenProblem | Problem | UserRead | ValidationProblem
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
