"""Gateway errors and their mapping to OpenAI's error body and HTTP status (whose fault it is)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from tandemlm.errors import (
    ContentFilteredError,
    ContextLengthError,
    EngineError,
    GuardError,
    ModelLoadingError,
    ModelNotFoundError,
    ModelSourceError,
    PrivacyBlockedError,
    PrivacyError,
    QueueFullError,
    RequestCancelledError,
    TandemError,
    UnsupportedOperationError,
    ValidationError,
)
from tandemlm.server.protocol import error_body


class AuthError(TandemError):
    """Missing or wrong API key."""


class PayloadTooLargeError(ValidationError):
    """The request body is larger than `server.max_body_bytes`; it was refused before being read in full."""


class ShuttingDownError(TandemError):
    """The gateway is stopping: in-flight work was cancelled and new requests are refused (503)."""


def error_response(err: Exception) -> JSONResponse:
    """Map an error to OpenAI's error body and the HTTP status that says whose fault it is."""
    headers: dict[str, str] = {}
    if isinstance(err, AuthError):
        status, kind, code = 401, "authentication_error", "invalid_api_key"
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(err, PayloadTooLargeError):
        status, kind, code = 413, "invalid_request_error", "request_too_large"
    elif isinstance(err, ContentFilteredError):  # Azure OpenAI's code for a request its content filter refuses
        status, kind, code = 400, "invalid_request_error", "content_filter"
    elif isinstance(err, GuardError):  # failed closed: nothing was answered
        status, kind, code = 500, "server_error", "guard_failed"
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
    elif isinstance(err, ShuttingDownError):
        status, kind, code = 503, "server_busy", "shutting_down"
    elif isinstance(err, ModelLoadingError):
        status, kind, code = 503, "server_busy", "loading"
    elif isinstance(err, ModelSourceError):  # a model this gateway was not set up with (not fetched)
        status, kind, code = 503, "server_error", "model_unavailable"
    elif isinstance(err, RequestCancelledError):  # the client is gone or the server is stopping
        status, kind, code = 499, "cancelled", "request_cancelled"
    elif isinstance(err, TimeoutError):
        status, kind, code = 504, "timeout", "request_timeout"
    elif isinstance(err, EngineError):
        status, kind, code = 502, "upstream_error", None
    else:
        status, kind, code = 500, "server_error", None
    message = str(err) or "the request took longer than the gateway's request_timeout_s"
    return JSONResponse(error_body(message, kind, code=code), status_code=status, headers=headers)
