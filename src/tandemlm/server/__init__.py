"""The OpenAI-compatible gateway (extra: tandemlm[server])."""

from tandemlm.server.app import create_app

__all__ = ["create_app"]
