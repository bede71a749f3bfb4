"""Greedy answers the outcome tables already hold, replayed for the collaboration benchmark.

A collaboration's member often asks its engine exactly what `tandem bench outcomes` asked: the item's prompt,
greedy, the dataset's max_tokens (SuperICL's and CrossVerify's first answers, Rank's candidates, Vote's first
ballot). The answer is then the table's row, so `Replayed` returns it, with the row's usage, cost and latency on
the trace, instead of generating it again: a 1.5B GSM8K answer takes 20-35 s on this 2-core CPU. Every other
call (sampled answers, reconsider and guided prompts, logprobs, tokenization) goes to the engine itself.

Only generated answers are replayed: a multiple-choice row's `answer` is the likelihood pick, not the text the
model wrote, so `table_requests` skips those items.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from tandemlm.bench.datasets import Item, chat_prompt
from tandemlm.bench.outcomes import MAX_TOKENS, Outcome
from tandemlm.collab.base import Strategy
from tandemlm.models.base import Constraint, LanguageModel, each_role
from tandemlm.trace import record
from tandemlm.types import Chunk, Completion, LogProbs, Request, TraceEvent, Usage

#: the role on a replayed answer's trace event (its latency is the table's, not this run's)
REPLAYED = "replayed"


def table_request(item: Item) -> Request:
    """The request `tandem bench outcomes` sent for the item."""
    return Request.of(chat_prompt(item), max_tokens=MAX_TOKENS[item.kind])


def table_requests(items: Iterable[Item], table: Mapping[str, Outcome]) -> dict[Request, Outcome]:
    """Each generated item's table request and row (multiple choice left out, see the module doc)."""
    return {table_request(item): table[item.id] for item in items if item.kind != "choice" and item.id in table}


class Replayed(Strategy):
    """`engine`, answering the requests in `rows` from the table and everything else itself. `replayed` counts
    the answers it took from the table."""

    def __init__(self, engine: LanguageModel, rows: Mapping[Request, Outcome]) -> None:
        super().__init__(f"{engine.name} (replayed)", [engine])
        self.engine, self._rows, self.replayed = engine, dict(rows), 0
        self.grammars, self.constrained = engine.grammars, engine.constrained  # a planner keeps its grammar

    def _generate(self, request: Request) -> Completion:
        row = self._rows.get(request)
        if row is None:
            return self.engine.generate(request)
        self.replayed += 1
        usage = Usage(row.tokens_in, row.tokens_out)
        e = self.engine
        record(TraceEvent(e.name, e.location, "generate", REPLAYED, usage, row.latency_s, row.cost_usd,
                          e._call_egress(request, "generate")))  # fmt: skip
        cut = row.tokens_out >= request.params.max_tokens
        return Completion(row.answer, "length" if cut else "stop", usage, e.name)

    def generate_many(
        self, requests: Sequence[Request | str], *, role: str = "model", roles: Sequence[str] | None = None
    ) -> list[Completion]:
        """The table's answers from the table, the others decoded together by the engine."""
        asked = [self._check_request(r) for r in requests]
        named = each_role(len(asked), role, roles)
        rest = [(r, n) for r, n in zip(asked, named, strict=True) if r not in self._rows]
        fresh = iter(self.engine.generate_many([r for r, _ in rest], roles=[n for _, n in rest]))
        return [self.generate(r, role=n) if r in self._rows else next(fresh) for r, n in zip(asked, named, strict=True)]

    def _stream(self, request: Request) -> Iterator[Chunk]:
        if request in self._rows:
            yield from super()._stream(request)
        else:
            yield from self.engine.stream(request)

    # ---- everything but the table's answers is the engine's -----------------------------------------

    def next_token_logprobs(self, tokens: Sequence[int], *, top_k: int | None = None, role: str = "model") -> LogProbs:
        return self.engine.next_token_logprobs(tokens, top_k=top_k, role=role)

    def logprobs_after(
        self, tokens: Sequence[int], positions: Sequence[int], *, top_k: int | None = None, role: str = "model"
    ) -> list[LogProbs]:
        return self.engine.logprobs_after(tokens, positions, top_k=top_k, role=role)

    def score(self, prompt: str, continuation: str, *, role: str = "model") -> float:
        return self.engine.score(prompt, continuation, role=role)

    def constraint(self, grammar: str) -> Constraint:
        return self.engine.constraint(grammar)

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        return self.engine.tokenize(text, add_special=add_special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.engine.detokenize(tokens)

    def prompt_tokens(self, request: Request | str) -> list[int]:
        return self.engine.prompt_tokens(request)

    def is_end_token(self, token: int) -> bool:
        return self.engine.is_end_token(token)

    @property
    def vocab_fingerprint(self) -> str | None:
        return self.engine.vocab_fingerprint
