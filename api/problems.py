"""RFC 9457 problem details for every 4xx (and the rare 5xx) the API answers.

``raise Problem(404, "No such kiln", detail=...)`` in a route; the handlers installed by
:func:`install` turn it, FastAPI's HTTPException and validation errors into
``application/problem+json`` bodies with ``type``, ``title``, ``status``, ``detail``,
``instance`` (and ``errors`` for validation).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.contracts import StoreUnavailable

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://kilnworks.dev/problems/"


class ProblemDetails(BaseModel):
    """An RFC 9457 problem details body."""

    type: str
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    errors: list[dict[str, Any]] | None = None


class Problem(Exception):
    """An error a route raises to answer with a problem-details body."""

    def __init__(
        self, status: int, title: str, detail: str = "", *, kind: str | None = None
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None


def _response(
    request: Request,
    status: int,
    title: str,
    detail: str,
    kind: str,
    *,
    errors: list | None = None,
    headers: dict | None = None,
) -> JSONResponse:
    body = ProblemDetails(
        type=TYPE_BASE + kind,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    ).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    """Install the exception handlers on ``app``."""
    install_last_resort(app)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return _response(request, exc.status, exc.title, exc.detail, exc.kind, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        detail = exc.detail if isinstance(exc.detail, str) else ""
        return _response(
            request,
            exc.status_code,
            title,
            detail,
            title.lower().replace(" ", "-"),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return _response(request, 422, "Invalid request", detail, "invalid-request", errors=errors)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("telemetry store unavailable on %s: %s", request.url.path, exc)
        return _response(
            request,
            503,
            "Telemetry store unavailable",
            "the telemetry store cannot be reached now; retry shortly",
            "store-unavailable",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(SQLAlchemyError)
    async def _db_down(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("metadata store error on %s: %s", request.url.path, exc)
        return _response(
            request,
            503,
            "Metadata store unavailable",
            "the metadata database failed; retry shortly",
            "metadata-unavailable",
            headers={"Retry-After": "5"},
        )


def install_last_resort(app: FastAPI) -> None:
    """A bug must still answer in problem details (and be logged with the request path)."""

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _response(
            request, 500, "Internal error", "an unexpected error; it has been logged", "internal"
        )


# Added to every route's documented responses so the OpenAPI spec shows the problem shape.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemDetails, "content": {MEDIA_TYPE: {}}, "description": text}
    for code, text in (
        (401, "Missing or invalid token"),
        (403, "Not allowed for this role or enterprise"),
        (404, "No such resource"),
        (422, "Invalid request"),
    )
}
