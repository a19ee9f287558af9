"""Who is calling: the identity the middleware found for a request's API key, for the routes.

The middleware (serving/middleware.py) checks the key of every `/v1/` request and leaves the
caller's `Identity` in the request's state; a route that needs to know who calls, or needs a
role, asks for it with `CurrentIdentity` or `Depends(require(Role.APPROVER))`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from modelcycle.access.identity import Identity, Role
from modelcycle.serving.schemas import ErrorPublic

IDENTITY_STATE = "identity"  # the key in the ASGI scope's state


async def current_identity(request: Request) -> Identity:
    """The caller, as the middleware identified them (async: no thread per request)."""
    identity = request.scope.get("state", {}).get(IDENTITY_STATE)
    if not isinstance(identity, Identity):  # a route outside /v1/, where no key is checked
        raise HTTPException(
            status_code=401,
            detail="missing or invalid API key (Authorization: Bearer <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return identity


CurrentIdentity = Annotated[Identity, Depends(current_identity)]


def _with_article(role: Role) -> str:
    return f"an {role.value}" if role.value[0] in "aeiou" else f"a {role.value}"


def require(role: Role) -> Callable[[Identity], Awaitable[Identity]]:
    """A dependency that lets through callers with `role` or a higher one, and answers 403."""

    async def with_role(identity: CurrentIdentity) -> Identity:
        if not identity.may(role):
            raise HTTPException(
                status_code=403,
                detail=f"requires the {role.value} role; {identity.name} is "
                f"{_with_article(identity.role)}",
            )
        return identity

    return with_role


class IdentityPublic(BaseModel):
    name: str
    role: Role
    kind: str
    customer_id: str | None = None


identity_routes = APIRouter(prefix="/v1", tags=["access"])


@identity_routes.get(
    "/whoami",
    response_model=IdentityPublic,
    responses={
        401: {"model": ErrorPublic, "description": "Missing, wrong or revoked API key."},
        503: {"model": ErrorPublic, "description": "Users' API keys not read yet."},
    },
)
async def whoami(identity: CurrentIdentity) -> IdentityPublic:
    """Who the API takes the caller to be, from the API key sent, and with which role."""
    return IdentityPublic(
        name=identity.name,
        role=identity.role,
        kind=identity.kind,
        customer_id=identity.customer_id,
    )
