"""Selective disclosure (CORE-style): the edge model rewrites a request into the minimal task-relevant
question, and only that question goes on to the cloud; the original request never leaves the device.

The rewrite is still screened by the gatekeeper's detectors before it is sent (a small model may keep a
detail it was told to drop), and checked for the request's non-personal facts (privacy/facts.py): a
rewrite that drops one is asked for again, naming what it dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from tandemlm.models.base import LanguageModel
from tandemlm.privacy.detectors import fill, load_prompt
from tandemlm.types import Message, Request


def conversation_text(request: Request) -> str:
    """The request's messages as one text for a rewriting prompt (the last user message is the task)."""
    if len(request.messages) == 1:
        return request.messages[0].content
    return "\n".join(f"{m.role}: {m.content}" for m in request.messages)


def feedback(missing: Sequence[str]) -> str:
    """The note a retried rewrite prompt carries: what the last rewrite left out ("" for a first try)."""
    if not missing:
        return ""
    return "\n" + fill(load_prompt("privacy_rewrite_retry"), missing="; ".join(missing)).strip() + "\n"


class SelectiveDisclosure:
    """Asks the edge model for the minimal question; `max_tokens` bounds the rewrite."""

    def __init__(self, edge: LanguageModel, *, max_tokens: int = 192) -> None:
        self.edge = edge
        self.max_tokens = max_tokens
        self.prompt = load_prompt("privacy_disclosure")

    def rewrite(self, request: Request, missing: Sequence[str] = ()) -> Request:
        """A one-message request holding only the minimal question, with the original sampling parameters;
        `missing`: what the last rewrite dropped, for a retry."""
        prompt = fill(self.prompt, request=conversation_text(request), feedback=feedback(missing))
        answer = self.edge.generate(Request.of(prompt, max_tokens=self.max_tokens), role="disclosure")
        question = answer.text.strip() or request.messages[-1].content
        return Request((Message("user", question),), request.params)
