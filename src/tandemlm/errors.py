"""Typed errors. Each carries an actionable message; wrapping code chains the cause (`raise ... from err`)."""

from __future__ import annotations


class TandemError(Exception):
    """Base class of every error tandemlm raises on purpose."""


class ValidationError(TandemError, ValueError):
    """A request, parameter or argument is malformed; the message says what to fix."""


class ConfigError(TandemError):
    """A pipeline file is invalid; the message names the file, the key path and what was expected."""


class SandboxUnavailableError(ConfigError):
    """Untrusted code cannot be run here: bubblewrap is missing or cannot create namespaces (tandemlm.sandbox)."""


class ModelNotFoundError(TandemError, KeyError):
    """A catalog name, pipeline or model name that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelSourceError(TandemError):
    """A model file could not be fetched or failed verification (wrong size or SHA-256, no pip, no disk space)."""


class MissingExtraError(TandemError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class UnsupportedOperationError(TandemError, NotImplementedError):
    """The engine cannot do this (for example full logprobs from a remote endpoint)."""


class ContextLengthError(ValidationError):
    """The prompt plus the requested tokens do not fit in the model's context window."""


class VocabularyMismatchError(TandemError):
    """Two models that must share a tokenizer do not."""


class EngineError(TandemError):
    """A model backend failed at run time."""


class InvalidOutputError(EngineError):
    """A model's answer broke the request's response_format or tool schema, after the one retry it gets."""


class RemoteError(EngineError):
    """An HTTP endpoint answered with an error; `status` is its HTTP status (None for transport errors)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(RemoteError):
    """The endpoint rejected the API key (401/403)."""


class RateLimitError(RemoteError):
    """The endpoint kept answering 429 after all retries."""


class RemoteTimeoutError(RemoteError):
    """The endpoint did not answer in time after all retries."""


class QueueFullError(TandemError):
    """A local model's queue is full: the caller should retry later (the gateway answers 503, Retry-After)."""


class ModelLoadingError(TandemError):
    """The models are still loading: retry shortly (the gateway answers 503 `loading` with Retry-After)."""


class RequestCancelledError(TandemError):
    """The request was given up (client gone, stream closed, server shutting down); its model work stopped."""


class DeadlineExceededError(TandemError, TimeoutError):
    """The request ran past its deadline (`server.request_timeout_s`); its model work stopped."""


class PrivacyBlockedError(ValidationError):
    """A privacy policy refuses to send this request anywhere: it holds an entity type the policy blocks."""


class PrivacyError(TandemError):
    """Privacy screening failed (a PII detector raised); the request was not sent to the cloud (fail closed)."""


class ContentFilteredError(ValidationError):
    """A guard refuses the request (an unsafe input); nothing was sent to any model. `category` is its hazard code."""

    def __init__(self, message: str, category: str | None = None) -> None:
        super().__init__(message)
        self.category = category


class GuardError(TandemError):
    """A guard failed (its model or head raised); the request was not answered (fail closed)."""


def missing_extra(package: str, extra: str) -> MissingExtraError:
    """The error to raise when an optional import fails."""
    return MissingExtraError(f"{package} is not installed; install it with: pip install 'tandemlm[{extra}]'")
