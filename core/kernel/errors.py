"""RFC 9457 problem details for every error the platform answers.

Services raise :class:`Problem` subclasses; the kernel turns them, Quart's HTTP
exceptions, schema validation errors and anything unexpected into
``application/problem+json``. Exception text of unexpected errors never leaves
the server: the client gets the request id to quote instead.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from quart import Quart, Response, g, json
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://synergyhub.dev/problems/"

log = logging.getLogger("synergyhub.errors")

# The stable ``type`` slug per status when no more specific one is given.
DEFAULT_TYPES: dict[int, str] = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}


class Problem(Exception):
    """An error a client can act on; its ``detail`` is safe to show."""

    status: int = 400
    type_slug: str | None = None
    title: str | None = None

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        type_slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if type_slug is not None:
            self.type_slug = type_slug
        self.headers = headers or {}
        self.extensions = extensions


class BadRequest(Problem):
    status = 400


class Unauthenticated(Problem):
    status = 401


class Forbidden(Problem):
    status = 403


class NotFound(Problem):
    """Also answered for resources outside the caller's scope, so ids cannot be probed."""

    status = 404


class Conflict(Problem):
    status = 409


class Unprocessable(Problem):
    status = 422


class RateLimited(Problem):
    status = 429


class ServiceUnavailable(Problem):
    status = 503


def problem_response(
    status: int,
    detail: str,
    *,
    type_slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """Build a problem+json response (also used outside request handlers)."""
    slug = type_slug or DEFAULT_TYPES.get(status, "error")
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    request_id = g.get("request_id") if g else None
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    response = Response(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def validation_error_list(exc: Any, *, limit: int = 50) -> list[dict[str, str]]:
    """pydantic's errors as ``[{field, message}]``, without the input (it may hold secrets)."""
    errors_fn = getattr(exc, "errors", None)
    if not callable(errors_fn):
        return [{"field": "", "message": "request body is invalid"}]
    return [
        {"field": ".".join(str(part) for part in item.get("loc", ())),
         "message": item.get("msg", "invalid")}
        for item in errors_fn(include_url=False, include_input=False)
    ][:limit]


def install_error_handlers(app: Quart) -> None:
    """Route every error through one problem+json renderer."""

    @app.errorhandler(Problem)
    async def _problem(error: Problem) -> Response:
        return problem_response(
            error.status,
            error.detail,
            type_slug=error.type_slug,
            title=error.title,
            headers=error.headers,
            **error.extensions,
        )

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema(error: RequestSchemaValidationError) -> Response:
        return problem_response(
            422,
            "The request does not match the expected schema.",
            errors=validation_error_list(error.validation_error),
        )

    @app.errorhandler(HTTPException)
    async def _http(error: HTTPException) -> Response:
        status = error.code or 500
        detail = {
            404: "No such resource.",
            405: "This method is not allowed on this resource.",
            413: f"The request body is larger than the limit of "
            f"{app.config.get('MAX_CONTENT_LENGTH')} bytes.",
            415: "The request's content type is not supported; send application/json.",
        }.get(status, error.description or HTTPStatus(status).phrase)
        headers: dict[str, str] = {}
        if status == 405 and getattr(error, "valid_methods", None):
            headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return problem_response(status, detail, headers=headers)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error", exc_info=error)
        return problem_response(
            500,
            "An unexpected error occurred. Quote the request id when reporting it.",
        )
