"""Gateway errors and their mapping to OpenAI's error body and HTTP status (whose fault it is)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from tandemlm.errors import (
    ContextLengthError,
    EngineError,
    ModelNotFoundError,
    PrivacyBlockedError,
    PrivacyError,
    TandemError,
    UnsupportedOperationError,
    ValidationError,
)
from tandemlm.server.protocol import error_body


class AuthError(TandemError):
    """Missing or wrong API key."""


class QueueFullError(TandemError):
    """Every slot of a local model is busy and its queue is full: the client should retry later."""


def error_response(err: Exception) -> JSONResponse:
    """Map an error to OpenAI's error body and the HTTP status that says whose fault it is."""
    headers: dict[str, str] = {}
    if isinstance(err, AuthError):
        status, kind, code = 401, "authentication_error", "invalid_api_key"
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(err, PrivacyBlockedError):
        status, kind, code = 400, "invalid_request_error", "pii_blocked"
    elif isinstance(err, PrivacyError):  # failed closed: nothing was sent
        status, kind, code = 500, "server_error", "privacy_screening_failed"
    elif isinstance(err, ContextLengthError):
        status, kind, code = 400, "invalid_request_error", "context_length_exceeded"
    elif isinstance(err, (ValidationError, UnsupportedOperationError)):
        status, kind, code = 400, "invalid_request_error", None
    elif isinstance(err, ModelNotFoundError):
        status, kind, code = 404, "invalid_request_error", "model_not_found"
    elif isinstance(err, QueueFullError):
        status, kind, code = 503, "server_busy", "queue_full"
    elif isinstance(err, TimeoutError):
        status, kind, code = 504, "timeout", "request_timeout"
    elif isinstance(err, EngineError):
        status, kind, code = 502, "upstream_error", None
    else:
        status, kind, code = 500, "server_error", None
    message = str(err) or "the request took longer than the gateway's request_timeout_s"
    return JSONResponse(error_body(message, kind, code=code), status_code=status, headers=headers)
