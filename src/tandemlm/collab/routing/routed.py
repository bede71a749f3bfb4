"""`QueryRouter`: a router scores the request before any generation; the whole request goes to one model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Literal

from tandemlm.collab.base import Strategy, decided, decided_stream
from tandemlm.collab.routing.base import Router
from tandemlm.errors import ValidationError
from tandemlm.execution import run_in_thread
from tandemlm.models.base import LanguageModel
from tandemlm.types import Chunk, Completion, Request


@dataclass(frozen=True)
class RouteDecision:
    """Where a request went and why: its router score against the threshold."""

    target: Literal["edge", "cloud"]
    score: float
    threshold: float

    def describe(self) -> str:
        sign = ">" if self.target == "cloud" else "<="
        return f"route: {self.target} (score {self.score:.6g} {sign} threshold {self.threshold:.6g})"


def routed_text(request: Request) -> str:
    """What the router reads: the last user message (the last message when there is no user turn)."""
    users = [m for m in request.messages if m.role == "user"]
    return (users[-1] if users else request.messages[-1]).content


class QueryRouter(Strategy):
    """Sends each request to the cloud when the router's score of its last user message is above
    `threshold`, else to the edge; the completion's decision (and its trace event) says which and the score.
    Calibrate the threshold to a cloud-call budget with `router.calibrate(prompts, share)`."""

    def __init__(
        self,
        edge: LanguageModel,
        cloud: LanguageModel,
        router: Router,
        threshold: float,
        *,
        name: str | None = None,
    ) -> None:
        if router.reads_draft:
            raise ValidationError(
                f"the {router.name!r} router scores the edge's draft, so it decides after the edge answers: it is a "
                "cascade's rule, not a query router's (a query router decides before any model runs)"
            )
        super().__init__(name or f"route:{router.name}({edge.name}|{cloud.name})", (edge, cloud))
        self.edge, self.cloud, self.router = edge, cloud, router
        self.threshold = float(threshold)

    def decide(self, request: Request | str) -> RouteDecision:
        """Score the request and pick a model, without generating."""
        if isinstance(request, str):
            request = Request.of(request)
        score = float(self.router.score([routed_text(request)])[0])
        return RouteDecision("cloud" if score > self.threshold else "edge", score, self.threshold)

    def _model(self, decision: RouteDecision) -> LanguageModel:
        return self.cloud if decision.target == "cloud" else self.edge

    def _generate(self, request: Request) -> Completion:
        decision = self.decide(request)
        return decided(self._model(decision).generate(request, role=decision.target), decision.describe())

    async def _agenerate(self, request: Request) -> Completion:
        decision = await run_in_thread(self.decide, request)  # scoring is CPU work
        answer = await self._model(decision).agenerate(request, role=decision.target)
        return decided(answer, decision.describe())

    def _stream(self, request: Request) -> Iterator[Chunk]:
        decision = self.decide(request)
        yield from decided_stream(self._model(decision).stream(request, role=decision.target), decision.describe())

    async def _astream(self, request: Request) -> AsyncIterator[Chunk]:
        # the chosen model's own async path: a remote one streams natively, a local one from its owner thread
        decision = await run_in_thread(self.decide, request)
        pieces = self._model(decision).astream(request, role=decision.target)
        try:
            async for chunk in pieces:
                if chunk.completion is not None:
                    chunk = Chunk(chunk.text, chunk.finish_reason, decided(chunk.completion, decision.describe()))
                yield chunk
        finally:
            await pieces.aclose()
