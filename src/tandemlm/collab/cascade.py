"""Cascade (FrugalGPT, GateKeeper): the small model answers; when its answer looks weak, the large one does.

The small model's answer is scored by a confidence signal read from the small model itself
(collab/confidence.py: token logprobs, self-consistency, self-verification P(yes), or the prompt's
own code examples). At or above `threshold` the small answer stands; below, the request escalates to
the large model, which sees the original request, or (`show_draft`) the request with the small
model's draft to check. Budget mode: `threshold_for_budget` picks the threshold that sends a target
share of requests to the large model, from signals measured on held-out traffic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from tandemlm.collab.base import Strategy, decided, decided_stream
from tandemlm.collab.confidence import SIGNALS, AnswerKey, Signal, prompts, signal_fn
from tandemlm.collab.routing.base import threshold_for_share
from tandemlm.errors import ValidationError
from tandemlm.models.base import LanguageModel
from tandemlm.tools import render_calls
from tandemlm.types import Chunk, Completion, Message, Request


@dataclass(frozen=True)
class CascadeDecision:
    escalated: bool
    signal: str
    value: float
    threshold: float

    def describe(self) -> str:
        verdict = "escalated to large" if self.escalated else "small answer kept"
        op = "<" if self.escalated else ">="
        return f"cascade: {verdict} ({self.signal} {self.value:.3f} {op} {self.threshold})"


class Cascade(Strategy):
    """A LanguageModel that answers with `small`, escalating to `large` when `signal` < `threshold`."""

    def __init__(
        self,
        small: LanguageModel,
        large: LanguageModel,
        *,
        signal: Signal = "logprob",
        threshold: float,
        show_draft: bool = False,
        samples: int = 3,
        answer_key: AnswerKey = "text",
        name: str | None = None,
    ) -> None:
        if signal not in SIGNALS:
            raise ValidationError(f"unknown cascade signal {signal!r}; one of {', '.join(SIGNALS)}")
        super().__init__(name or f"cascade({small.name}->{large.name})", (small, large))
        self.small, self.large = small, large
        self.signal, self.threshold, self.show_draft = signal, float(threshold), show_draft
        self._score = signal_fn(signal, samples=samples, key=answer_key)

    def decide(self, request: Request, draft: str) -> CascadeDecision:
        """Score the small model's draft and decide whether to escalate."""
        value = self._score(self.small, request, draft)
        return CascadeDecision(value < self.threshold, self.signal, value, self.threshold)

    def escalation(self, request: Request, draft: str) -> Request:
        """What the large model receives: the request itself, or with `show_draft` the draft to check."""
        if not self.show_draft:
            return request
        last = request.messages[-1]
        content = prompts()["escalate_with_draft"].format(question=last.content, draft=draft)
        return replace(request, messages=(*request.messages[:-1], Message(last.role, content)))

    def _generate(self, request: Request) -> Completion:
        draft = self.small.generate(request, role="small")
        decision = self.decide(request, written(draft))
        if not decision.escalated:
            return decided(draft, decision.describe())
        return decided(self.large.generate(self.escalation(request, written(draft)), role="large"), decision.describe())

    def _stream(self, request: Request) -> Iterator[Chunk]:
        # The signal needs the whole draft, so the small answer is complete before anything is sent;
        # an escalated answer then streams from the large model as it is produced.
        draft = self.small.generate(request, role="small")
        decision = self.decide(request, written(draft))
        if not decision.escalated:
            yield Chunk(draft.text, draft.finish_reason, decided(draft, decision.describe()), draft.logprobs or ())
            return
        yield from decided_stream(self.large.stream(self.escalation(request, written(draft)), role="large"),
                                  decision.describe())  # fmt: skip


def written(answer: Completion) -> str:
    """What the model wrote, as the signal scores it: the text, or its tool calls in the format models write."""
    return render_calls(answer.tool_calls) if answer.tool_calls else answer.text


def threshold_for_budget(signals: Sequence[float] | np.ndarray, cloud_share: float) -> float:
    """The threshold below which `cloud_share` of these signal values fall (fewer on ties): the budget mode of
    a cascade, fitted on one split and applied to new requests."""
    if not 0.0 <= cloud_share <= 1.0 or len(signals) == 0:
        raise ValidationError(f"need signal values and a cloud share in [0, 1], got {cloud_share!r}")
    # escalating when value < t is routing to the cloud when −value > −t
    return -threshold_for_share(-np.asarray(signals, dtype=np.float64), cloud_share)
