"""Cross-cutting HTTP behaviour: request ids, security headers, CORS."""

from __future__ import annotations

import re
import secrets
import uuid

from quart import Quart, Response, g, request

from core.kernel.errors import Unprocessable
from core.kernel.logging import request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

# API responses never render HTML, so the default policy denies everything.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(self), geolocation=()",
}


def new_csp_nonce() -> str:
    """A per-response nonce for HTML pages that need an inline style or script."""
    nonce = secrets.token_urlsafe(16)
    g.csp_nonce = nonce
    return nonce


def install_middleware(app: Quart, *, cors_origins: list[str]) -> None:
    allowed_origins = frozenset(cors_origins)

    @app.before_request
    async def _assign_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request_id_var.set(g.request_id)

    @app.before_request
    async def _refuse_operator_query_keys() -> None:
        """Query keys never become filter keys: ``$``/dotted keys are refused at the edge."""
        for key in request.args:
            if key.startswith("$") or "$" in key or "." in key or "\x00" in key:
                raise Unprocessable(
                    f"Query parameter {key[:40]!r} is not allowed.", type_slug="invalid-query"
                )

    @app.after_request
    async def _decorate(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        own_csp = response.headers.get("Content-Security-Policy", "")
        for name, value in SECURITY_HEADERS.items():
            if name == "X-Frame-Options" and "frame-ancestors" in own_csp:
                continue  # the page's own frame-ancestors decides (e.g. embeddable pages)
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
        origin = request.headers.get("Origin")
        if origin and origin in allowed_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Expose-Headers"] = "X-Request-ID, ETag, Retry-After"
            response.vary.add("Origin")
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = (
                    "GET, POST, PUT, PATCH, DELETE, OPTIONS"
                )
                response.headers["Access-Control-Allow-Headers"] = (
                    "Authorization, Content-Type, X-Request-ID, X-Solution"
                )
                response.headers["Access-Control-Max-Age"] = "600"
        return response
