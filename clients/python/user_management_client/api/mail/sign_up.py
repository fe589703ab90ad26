from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.accepted import Accepted
from ...models.bad_request_problem import BadRequestProblem
from ...models.conflict_problem import ConflictProblem
from ...models.problem import Problem
from ...models.signup_create import SignupCreate
from ...models.validation_problem import ValidationProblem
from ...types import Response


def _get_kwargs(
    *,
    body: SignupCreate,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/auth/signup",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Accepted | BadRequestProblem | ConflictProblem | Problem | ValidationProblem | None:
    if response.status_code == 202:
        response_202 = Accepted.from_dict(response.json())

        return response_202

    if response.status_code == 400:
        response_400 = BadRequestProblem.from_dict(response.json())

        return response_400

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = ConflictProblem.from_dict(response.json())

        return response_409

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
) -> Response[Accepted | BadRequestProblem | ConflictProblem | Problem | ValidationProblem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: SignupCreate,
) -> Response[Accepted | BadRequestProblem | ConflictProblem | Problem | ValidationProblem]:
    """Create an account (SIGNUP=open only, else 404), active once its address confirms.

     <br/>A taken address answers the same 202 (its owner is mailed a notice instead), so the<br/>answer
    does not tell which addresses have accounts; a taken username is a 409.

    Args:
        body (SignupCreate): Body of POST /auth/signup: a new account, inactive until its address
            confirms.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Accepted | BadRequestProblem | ConflictProblem | Problem | ValidationProblem]
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
    client: AuthenticatedClient | Client,
    body: SignupCreate,
) -> Accepted | BadRequestProblem | ConflictProblem | Problem | ValidationProblem | None:
    """Create an account (SIGNUP=open only, else 404), active once its address confirms.

     <br/>A taken address answers the same 202 (its owner is mailed a notice instead), so the<br/>answer
    does not tell which addresses have accounts; a taken username is a 409.

    Args:
        body (SignupCreate): Body of POST /auth/signup: a new account, inactive until its address
            confirms.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Accepted | BadRequestProblem | ConflictProblem | Problem | ValidationProblem
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: SignupCreate,
) -> Response[Accepted | BadRequestProblem | ConflictProblem | Problem | ValidationProblem]:
    """Create an account (SIGNUP=open only, else 404), active once its address confirms.

     <br/>A taken address answers the same 202 (its owner is mailed a notice instead), so the<br/>answer
    does not tell which addresses have accounts; a taken username is a 409.

    Args:
        body (SignupCreate): Body of POST /auth/signup: a new account, inactive until its address
            confirms.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Accepted | BadRequestProblem | ConflictProblem | Problem | ValidationProblem]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: SignupCreate,
) -> Accepted | BadRequestProblem | ConflictProblem | Problem | ValidationProblem | None:
    """Create an account (SIGNUP=open only, else 404), active once its address confirms.

     <br/>A taken address answers the same 202 (its owner is mailed a notice instead), so the<br/>answer
    does not tell which addresses have accounts; a taken username is a 409.

    Args:
        body (SignupCreate): Body of POST /auth/signup: a new account, inactive until its address
            confirms.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Accepted | BadRequestProblem | ConflictProblem | Problem | ValidationProblem
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
