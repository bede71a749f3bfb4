"""Guardian mode (CoGenesis-style): the cloud sees only an abstract sub-question or plan request written by
the edge model without private context; the edge model then composes the final answer from the cloud's
general answer and the private request, which never leaves the device.

The gatekeeper checks both steps (privacy/facts.py): the abstract question must keep the request's
non-personal numbers and its question, and the composed answer the expert's result (its final number);
each is asked for once more, naming what was dropped, before the gatekeeper falls back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tandemlm.models.base import LanguageModel
from tandemlm.privacy.detectors import fill, load_prompt
from tandemlm.privacy.disclosure import conversation_text, feedback
from tandemlm.types import GenerationParams, Message, Request


class Guardian:
    """The edge model's two steps around the cloud call: `abstract` before it, `compose` after it."""

    def __init__(self, edge: LanguageModel, *, max_tokens: int = 192) -> None:
        self.edge = edge
        self.max_tokens = max_tokens
        self.plan_prompt = load_prompt("privacy_guardian_plan")
        self.compose_prompt = load_prompt("privacy_guardian_compose")

    def abstract(self, request: Request, missing: Sequence[str] = ()) -> Request:
        """The general question for the cloud (one user message, no private context); `missing`: what the
        last abstraction dropped, for a retry."""
        prompt = fill(self.plan_prompt, request=conversation_text(request), feedback=feedback(missing))
        answer = self.edge.generate(Request.of(prompt, max_tokens=self.max_tokens), role="guardian-abstract")
        question = answer.text.strip() or "Explain, step by step, how to solve this kind of task in general."
        return Request((Message("user", question),), request.params)

    def composition(self, request: Request, plan: str, missing: Sequence[str] = ()) -> Request:
        """The request the edge model answers with the private data and the cloud's general answer; `missing`:
        what the last composition dropped of the expert's answer, for a retry."""
        prompt = fill(
            self.compose_prompt, plan=plan.strip(), request=conversation_text(request), feedback=feedback(missing)
        )
        system = tuple(m for m in request.messages if m.role == "system")
        params: GenerationParams = replace(request.params)
        return Request((*system, Message("user", prompt)), params)
