"""`LanguageModel`: the one interface every engine and every collaboration strategy implements.

Engines implement a few protected methods (`_generate`, optionally `_stream`, `_next_token_logprobs`,
`_token_logprobs`, `_tokenize`, ...). The public methods here add, once for all of them: request
validation, the context-window check, tracing, usage, cost, the egress ledger for cloud models, and
typed errors.
"""

from __future__ import annotations

import contextvars
import hashlib
import itertools
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np

from tandemlm.errors import (
    ContextLengthError,
    EngineError,
    InvalidOutputError,
    TandemError,
    UnsupportedOperationError,
    ValidationError,
)
from tandemlm.execution import ModelWorker, iterate_in_thread, run_in_thread
from tandemlm.structured import problem, unenforced
from tandemlm.trace import Recorder, record, write_egress
from tandemlm.types import Chunk, Completion, Location, LogProbs, Price, Request, TraceEvent, Usage

LOCATIONS: tuple[str, ...] = ("edge", "cloud")


class Constraint(Protocol):
    """A decoding grammar's state over one model's vocabulary, for strategies that pick tokens themselves:
    which next tokens it allows, advanced token by token. `copy` forks the state (a speculative draft)."""

    def mask(self, dist: LogProbs) -> LogProbs:
        """The distribution with the tokens the grammar forbids removed, renormalised over the rest."""
        ...

    def allows(self, token: int) -> bool:
        """Whether the grammar allows `token` next (one check: cheaper than `mask` over a whole vocabulary)."""
        ...

    def accept(self, token: int) -> None:
        """Advance past `token`, which must be allowed."""
        ...

    def copy(self) -> Constraint: ...


class LanguageModel:
    """Base class of engines and strategies. A strategy built from LanguageModels is itself one, so they nest."""

    #: How many calls the model can serve at once; None means no limit (remote endpoints). A server
    #: queues requests in front of a model with a limit instead of piling threads onto its lock.
    max_concurrency: int | None = None
    #: Engines that send bytes themselves (HTTP) call `leaving(body)` right before each send; for the others
    #: (a local model priced as a cloud one) the call's egress is written when the call starts.
    sends_own_egress = False
    #: The thread that owns a local engine's handle (None for remote engines and strategies): see execution.py.
    owner: ModelWorker | None = None
    #: What the model honours beyond plain text, by OpenAI parameter name ("response_format", "logprobs",
    #: "tools"); a request using anything else is a ValidationError naming it. Strategies derive theirs.
    supports: frozenset[str] = frozenset()
    #: Whether decoding is held to the request's schema (a grammar): a broken answer is then an error at once;
    #: otherwise (remote endpoints, test doubles) `generate` asks once more before giving up.
    constrained = False
    #: Whether `constraint` can build a grammar's state over this model's vocabulary (token-level strategies
    #: decoding structured output need one).
    grammars = False
    #: How many answers `generate_many` decodes together (1: one after another).
    batch_slots = 1

    def __init__(self, name: str, *, location: Location = "edge", price: Price | None = None) -> None:
        if location not in LOCATIONS:
            raise ValidationError(f"location must be 'edge' or 'cloud', got {location!r}")
        self.name = name
        self.location: Location = location
        self.price = price or Price()
        self._fingerprint: str | None = None
        #: JSONL file each cloud call's egress is appended to, where it leaves (`Runtime` sets the config's)
        self.ledger: Path | None = None
        self._calls = itertools.count()
        self.calls = 0  # calls started, failed and cancelled ones included (for /metrics)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, location={self.location!r})"

    # ---- public API -------------------------------------------------------------------------------

    def generate(self, request: Request | str, *, role: str = "model") -> Completion:
        """Answer a request (a `Request`, or a plain user prompt). An answer that breaks the request's
        response_format or tool schemas is asked for once more (unless decoding was constrained), then an
        `InvalidOutputError`."""
        request = self._check_request(request)
        earlier: tuple[TraceEvent, ...] = ()  # a retried answer's calls cost too: they stay on the trace
        for attempt in itertools.count(1):
            with _Call(self, "generate", role, self._call_egress(request, "generate")) as call:
                completion = call.complete(self._generate(request))
            if self._kept_format(request, completion, attempt):
                return replace(completion, trace=(*earlier, *completion.trace)) if earlier else completion
            earlier += completion.trace
        raise AssertionError("unreachable")

    def generate_many(
        self, requests: Sequence[Request | str], *, role: str = "model", roles: Sequence[str] | None = None
    ) -> list[Completion]:
        """Answer several requests, in order, as `generate` answers each. An engine that decodes several sequences
        in one batch (`batch_slots` > 1: llama.cpp) does so for plain-text requests, which on a CPU costs far less
        than one after another; each answer keeps its own trace event, whose latency runs from the moment its
        sequence was admitted to the batch until it ended. `roles`: one trace role per request (else `role`)."""
        checked = [self._check_request(r) for r in requests]
        named = each_role(len(checked), role, roles)
        if self.batch_slots < 2 or len(checked) < 2 or not all(self._batchable(r) for r in checked):
            return [self.generate(r, role=n) for r, n in zip(checked, named, strict=True)]
        calls = [
            _Call(self, "generate", n, self._call_egress(r, "generate")) for r, n in zip(checked, named, strict=True)
        ]
        for call in calls:
            with call:  # counted, and its egress written, before anything is decoded
                pass
        try:
            results = self._generate_many(checked)
        except TandemError:
            raise
        except Exception as err:
            raise EngineError(f"{self.name}: {type(err).__name__}: {err}") from err
        answers = []
        for call, (completion, seconds) in zip(calls, results, strict=True):
            with call:
                call.elapsed = seconds
                answers.append(call.complete(completion))
        return answers

    def _batchable(self, request: Request) -> bool:
        """Whether `_generate_many` can answer this request (engines that batch say which ones)."""
        return True

    def _generate_many(self, requests: list[Request]) -> list[tuple[Completion, float]]:
        """The answers of requests decoded together, each with its seconds; engines with `batch_slots` > 1."""
        raise NotImplementedError

    async def agenerate(self, request: Request | str, *, role: str = "model") -> Completion:
        """`generate` for asyncio callers; engines with a native async client override `_agenerate`."""
        request = await self._acheck_request(request)
        earlier: tuple[TraceEvent, ...] = ()
        for attempt in itertools.count(1):
            with _Call(self, "generate", role, self._call_egress(request, "generate")) as call:
                completion = call.complete(await self._agenerate(request))
            if self._kept_format(request, completion, attempt):
                return replace(completion, trace=(*earlier, *completion.trace)) if earlier else completion
            earlier += completion.trace
        raise AssertionError("unreachable")

    def _kept_format(self, request: Request, completion: Completion, attempt: int) -> bool:
        """True when the answer keeps the request's format; False to ask again; raises when no try is left."""
        if not request.params.response_format and not request.params.tools:
            return True
        why = problem(request.params, completion)
        if why is None:
            return True
        if attempt < 2 and not self.constrained:
            return False
        raise InvalidOutputError(self._invalid(request, why, attempt))

    def _invalid(self, request: Request, why: str, attempts: int) -> str:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        message = f"{self.name}: the model's answer is invalid{tries}: {why}"
        if self.constrained:
            rf = request.params.response_format
            schemas = [rf.schema_dict] if rf is not None and rf.schema else []
            loose = unenforced([*schemas, *(t.schema for t in request.params.tools)])
            if loose:
                message += f" (decoding grammars do not enforce {', '.join(loose)})"
        return message

    def stream(self, request: Request | str, *, role: str = "model") -> Iterator[Chunk]:
        """Answer a request piece by piece; the last chunk carries the finish reason and the traced completion."""
        request = self._check_request(request)
        call = _Call(self, "stream", role, self._call_egress(request, "stream"))
        pieces = self._stream(request)
        while True:
            with call:  # active only while the engine works, so the consumer may switch threads between chunks
                try:
                    chunk = next(pieces)
                except StopIteration:
                    raise EngineError(f"{self.name}: the stream ended without a final chunk") from None
                if chunk.completion is not None:
                    self._check_streamed(request, chunk.completion)
                    chunk = replace(chunk, completion=call.complete(chunk.completion))
                    # end the inner generators now, in this thread and context: a consumer stops at the final
                    # chunk, and a generator left suspended would be closed whenever it is collected, elsewhere
                    if (close := getattr(pieces, "close", None)) is not None:
                        close()
            yield chunk
            if chunk.completion is not None:
                return

    async def astream(self, request: Request | str, *, role: str = "model") -> AsyncGenerator[Chunk, None]:
        """`stream` for asyncio callers: each piece is produced off the event loop (or natively, see `_astream`)."""
        request = await self._acheck_request(request)
        call = _Call(self, "stream", role, self._call_egress(request, "stream"))
        pieces = self._astream(request)
        try:
            while True:
                with call:
                    try:
                        chunk = await anext(pieces)
                    except StopAsyncIteration:
                        raise EngineError(f"{self.name}: the stream ended without a final chunk") from None
                    if chunk.completion is not None:
                        self._check_streamed(request, chunk.completion)
                        chunk = replace(chunk, completion=call.complete(chunk.completion))
                        if (aclose := getattr(pieces, "aclose", None)) is not None:  # as in `stream`
                            await aclose()
                yield chunk
                if chunk.completion is not None:
                    return
        finally:
            if (aclose := getattr(pieces, "aclose", None)) is not None:
                await aclose()

    def _check_streamed(self, request: Request, completion: Completion) -> None:
        """A stream cannot be asked again (its text is out): a broken answer fails at its end."""
        if request.params.response_format or request.params.tools:
            why = problem(request.params, completion)
            if why is not None:
                raise InvalidOutputError(self._invalid(request, why, 1))

    def next_token_logprobs(self, tokens: Sequence[int], *, top_k: int | None = None, role: str = "model") -> LogProbs:
        """The next-token distribution after a token prefix: dense for local engines, top-k for remote ones."""
        tokens = self._check_tokens(tokens)
        _check_top_k(top_k)
        with _Call(self, "logprobs", role, self._token_egress(tokens, [len(tokens) - 1], top_k)) as call:
            out = self._next_token_logprobs(tokens, top_k)
            call.complete(Completion("", "stop", Usage(len(tokens), 0), self.name))
            return out

    def logprobs_after(
        self, tokens: Sequence[int], positions: Sequence[int], *, top_k: int | None = None, role: str = "model"
    ) -> list[LogProbs]:
        """The next-token distribution after each prefix tokens[:p + 1], for p in positions, in one pass where
        the engine can (a verifier checks k drafted tokens this way)."""
        tokens = self._check_tokens(tokens)
        wanted = sorted(set(positions))
        if not wanted or wanted[0] < 0 or wanted[-1] >= len(tokens):
            raise ValidationError(f"positions must be non-empty and within [0, {len(tokens)}), got {list(positions)}")
        _check_top_k(top_k)
        with _Call(self, "logprobs", role, self._token_egress(tokens, wanted, top_k)) as call:
            found = dict(zip(wanted, self._logprobs_after(tokens, wanted, top_k), strict=True))
            call.complete(Completion("", "stop", Usage(len(tokens), 0), self.name))
        return [found[p] for p in positions]

    def score(self, prompt: str, continuation: str, *, role: str = "model") -> float:
        """Log-likelihood of `continuation` right after `prompt` (for multiple choice and verifiers)."""
        if not continuation:
            raise ValidationError("score needs a non-empty continuation")
        head = self.tokenize(prompt, add_special=True)
        tail = self.tokenize(continuation)
        tokens = head + tail
        with _Call(
            self, "score", role, self._token_egress(tokens, list(range(len(head) - 1, len(tokens) - 1)), None)
        ) as call:
            values = self._token_logprobs(tokens, len(head))
            call.complete(Completion("", "stop", Usage(len(tokens), 0), self.name))
            return float(np.sum(values))

    def constraint(self, grammar: str) -> Constraint:
        """The start state of a GBNF grammar over this model's vocabulary (see `grammars`)."""
        raise UnsupportedOperationError(f"{type(self).__name__} cannot build a decoding grammar")

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        """Token ids of `text`; `add_special` adds the model's begin-of-sequence token where it has one."""
        return self._tokenize(text, add_special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._detokenize(self._check_tokens(tokens))

    def prompt_tokens(self, request: Request | str) -> list[int]:
        """The token ids the model reads for this request (chat template applied): where token-level
        strategies start decoding."""
        return list(self._prompt_tokens(self._check_request(request)))

    def is_end_token(self, token: int) -> bool:
        """Whether the token ends generation (end of sequence or end of turn)."""
        return self._is_end_token(token)

    @property
    def vocab_fingerprint(self) -> str | None:
        """SHA-256 over the vocabulary (size and every token's bytes); None when the engine cannot see it."""
        if self._fingerprint is None:
            self._fingerprint = self._vocab_fingerprint()
        return self._fingerprint

    def _vocab_fingerprint(self) -> str | None:
        """Default: hash the vocabulary; a remote engine asks its server instead."""
        pieces = self._vocabulary()
        if pieces is None:
            return None
        digest = hashlib.sha256(str(len(pieces)).encode())
        for piece in pieces:
            digest.update(len(piece).to_bytes(4, "little") + piece)
        return digest.hexdigest()

    @property
    def context_length(self) -> int | None:
        """Tokens the model can attend to (prompt plus answer); None when unknown."""
        return None

    @property
    def features(self) -> frozenset[str]:
        """The request features this model honours (see `supports`)."""
        return self.supports

    def refusal(self, feature: str) -> str:
        """Why a request using `feature` is refused (the ValidationError's message)."""
        return f"{self.name}: {type(self).__name__} does not support {feature}"

    def close(self) -> None:
        """Release the engine's resources (model weights, HTTP connections)."""

    async def aclose(self) -> None:
        """Release what belongs to the running event loop (an async HTTP client's pooled connections), before
        the loop ends; the model stays usable. Default: nothing is bound to a loop."""

    def __enter__(self) -> LanguageModel:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- what engines implement -------------------------------------------------------------------

    def _generate(self, request: Request) -> Completion:
        """Answer without tracing; the base class adds the trace. Every engine implements this."""
        raise NotImplementedError

    async def _agenerate(self, request: Request) -> Completion:
        """Default: the blocking `_generate` in a thread, cancelled through the request's token."""
        return await run_in_thread(self._generate, request)

    def _stream(self, request: Request) -> Iterator[Chunk]:
        """Text pieces, then one final chunk with `completion` set. Default: the whole answer at once."""
        completion = self._generate(request)
        yield Chunk(completion.text)
        yield Chunk("", completion.finish_reason, completion)

    async def _astream(self, request: Request) -> AsyncIterator[Chunk]:
        """Default: the blocking `_stream`, driven by a thread of its own so the event loop stays free. Closing
        or cancelling the stream fires the request's token: the model it is waiting on stops within a token."""
        pieces = iterate_in_thread(lambda: self._stream(request))
        try:
            async for chunk in pieces:
                yield chunk
        finally:
            await pieces.aclose()

    def _next_token_logprobs(self, tokens: list[int], top_k: int | None) -> LogProbs:
        raise UnsupportedOperationError(f"{type(self).__name__} cannot give next-token logprobs")

    def _logprobs_after(self, tokens: list[int], positions: list[int], top_k: int | None) -> list[LogProbs]:
        """Distributions after tokens[:p + 1] for each of the sorted positions. Default: one call each."""
        return [self._next_token_logprobs(tokens[: p + 1], top_k) for p in positions]

    def _token_logprobs(self, tokens: list[int], start: int) -> np.ndarray:
        """Log-probability of each of tokens[start:] given the tokens before it. Default: one call per position."""
        return np.array(
            [self._next_token_logprobs(tokens[:i], None).logprob(tokens[i]) for i in range(start, len(tokens))]
        )

    def _tokenize(self, text: str, add_special: bool) -> list[int]:
        raise UnsupportedOperationError(f"{type(self).__name__} cannot tokenize")

    def _detokenize(self, tokens: list[int]) -> str:
        raise UnsupportedOperationError(f"{type(self).__name__} cannot detokenize")

    def _prompt_tokens(self, request: Request) -> list[int]:
        raise UnsupportedOperationError(f"{type(self).__name__} cannot show the prompt's tokens")

    def _is_end_token(self, token: int) -> bool:
        return False

    def _vocabulary(self) -> list[bytes] | None:
        """Every token's bytes, in id order, for the fingerprint; None when unknown."""
        return None

    def _count_prompt_tokens(self, request: Request) -> int | None:
        """Prompt tokens after the chat template, for the context check; None when the engine cannot tell."""
        return None

    def _egress(self, request: Request, operation: str) -> str | None:
        """The exact text that leaves the device for this request (operation "generate" or "stream"): None on
        the edge, the messages as JSON in the cloud. Engines that send other bytes (an HTTP body) override this
        so the ledger holds exactly what they send."""
        if self.location == "edge":
            return None
        messages = [m.to_dict() for m in request.messages]
        p = request.params
        if not p.tools and p.response_format is None:
            return json.dumps(messages, ensure_ascii=False)
        extra: dict[str, object] = {"tools": [t.to_dict() for t in p.tools]} if p.tools else {}
        if p.response_format is not None:
            extra["response_format"] = p.response_format.schema_dict or {"type": "json_object"}
        return json.dumps({"messages": messages, **extra}, ensure_ascii=False)  # schemas and tools leave too

    def _call_egress(self, request: Request, operation: str) -> str | None:
        """What a traced call writes to the ledger as it starts: nothing for engines that write their own sends
        (building the JSON only to drop it cost a few µs per gateway request)."""
        return None if self.sends_own_egress else self._egress(request, operation)

    def _token_egress(self, tokens: list[int], positions: list[int], top_k: int | None) -> str | None:
        """What leaves the device for a logprob query (None on the edge); remote engines return their body."""
        return None if self.location == "edge" else json.dumps({"tokens": tokens})

    # ---- validation -------------------------------------------------------------------------------

    def _check_request(self, request: Request | str) -> Request:
        if isinstance(request, str):
            request = Request.of(request)
        if not isinstance(request, Request):
            raise ValidationError(f"expected a Request or a prompt string, got {type(request).__name__}")
        if request.features and (missing := sorted(request.features - self.features)):
            raise ValidationError(self.refusal(missing[0]))
        limit = self.context_length
        if limit is not None:
            prompt_tokens = self._count_prompt_tokens(request)
            if prompt_tokens is not None and prompt_tokens + request.params.max_tokens > limit:
                wanted = request.params.max_tokens
                raise ContextLengthError(
                    f"{self.name}: the prompt has {prompt_tokens} tokens and max_tokens is {wanted}, "
                    f"which exceeds the context window of {limit} tokens; shorten the prompt or lower max_tokens"
                )
        return request

    async def _acheck_request(self, request: Request | str) -> Request:
        """`_check_request` for asyncio callers. Counting a long prompt's tokens is CPU work, done in a thread so
        it never stalls the event loop; a model without a context window counts nothing, so it checks in place."""
        if self.context_length is None:
            return self._check_request(request)
        return await run_in_thread(self._check_request, request)

    def _check_tokens(self, tokens: Sequence[int]) -> list[int]:
        out = [int(t) for t in tokens]
        if not out:
            raise ValidationError("need at least one token")
        return out


def gathered_logprobs(rows: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """log-softmax(rows[i])[targets[i]] for each row: the log-probability of each continuation token from the raw
    logits before it (engines with full logits rows)."""
    rows = rows.astype(np.float64)
    peak = rows.max(axis=1, keepdims=True)
    log_z = peak[:, 0] + np.log(np.exp(rows - peak).sum(axis=1))
    return rows[np.arange(len(targets)), np.asarray(targets)] - log_z


def check_ids(name: str, tokens: Sequence[int], n_vocab: int) -> None:
    """A typed error naming the model when a token id is outside its vocabulary (engines with a fixed vocabulary)."""
    bad = [t for t in tokens if not 0 <= t < n_vocab]
    if bad:
        raise ValidationError(f"{name}: token ids must be in [0, {n_vocab}), got {bad[:5]}")


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None and top_k < 1:
        raise ValidationError(f"top_k must be a positive integer, got {top_k}")


_active_call: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("tandem_call", default=None)


def leaving(text: str) -> None:
    """Called by an engine right before bytes leave the device: writes them to the egress ledger of the model
    being called (and of every active recorder that has one) and onto its trace event, whatever happens next."""
    call = _active_call.get()
    if call is not None:
        call.leaving(text)


class _Call:
    """One traced call: collects the events of inner calls, then records this call's own event."""

    def __init__(self, model: LanguageModel, operation: str, role: str, egress: str | None) -> None:
        self.model = model
        self.operation = operation
        self.role = role
        self.egress: str | None = None
        self._pending = egress  # written when the call starts, unless the engine writes what it sends itself
        self.recorder = Recorder()
        self.elapsed = 0.0
        self._t0 = 0.0
        self._started = False
        self._reset: contextvars.Token[_Call | None] | None = None

    def leaving(self, text: str) -> None:
        if self.model.location != "cloud":
            return
        self.egress = text
        write_egress(self.model.ledger, self.model.name, self.operation, self.role, text)

    def __enter__(self) -> _Call:
        if not self._started:
            self._started = True
            self.model.calls = next(self.model._calls) + 1
            if self._pending is not None and self.model.location == "cloud" and not self.model.sends_own_egress:
                self.leaving(self._pending)
        self.recorder.__enter__()
        self._reset = _active_call.set(self)
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.elapsed += time.perf_counter() - self._t0
        if self._reset is not None:
            _active_call.reset(self._reset)
            self._reset = None
        self.recorder.__exit__(exc_type, exc, tb)
        if exc is None or isinstance(exc, GeneratorExit):
            return
        record(self._event(Usage(), error=f"{type(exc).__name__}: {exc}"))
        if isinstance(exc, Exception) and not isinstance(exc, TandemError):  # cancellation passes through
            raise EngineError(f"{self.model.name}: {type(exc).__name__}: {exc}") from exc

    def complete(self, result: Completion) -> Completion:
        """Record this call's event and return the completion carrying the whole trace."""
        self.elapsed += time.perf_counter() - self._t0
        self._t0 = time.perf_counter()
        event = self._event(result.usage, decision=result.decision)
        record(event)
        return replace(result, model=self.model.name, trace=(*self.recorder.events,))

    def _event(self, usage: Usage, *, decision: str | None = None, error: str | None = None) -> TraceEvent:
        m = self.model
        return TraceEvent(
            model=m.name,
            location=m.location,
            operation=self.operation,
            role=self.role,
            usage=usage,
            latency_s=self.elapsed,
            cost_usd=m.price.cost(usage),
            egress=self.egress,
            decision=decision,
            error=error,
        )


def each_role(count: int, role: str, roles: Sequence[str] | None) -> list[str]:
    """The trace role of each of `count` requests: `roles`, one per request, or `role` for all."""
    if roles is None:
        return [role] * count
    if len(roles) != count:
        raise ValidationError(f"{len(roles)} roles for {count} requests")
    return list(roles)


def tightest(limits: Iterable[int | None]) -> int | None:
    """The smallest of the known limits (None when none is known): a strategy over several models can take
    no more concurrent requests, and no longer contexts, than the most limited of them."""
    return min((n for n in limits if n is not None), default=None)


class StopScanner:
    """Releases generated text piece by piece, holding back any tail that could begin a stop sequence,
    so a stop sequence is never streamed. Engines and strategies that decode token by token share it."""

    def __init__(self, stop: Sequence[str]) -> None:
        self.stop = tuple(stop)
        self.text = ""
        self.sent = 0

    def update(self, text: str) -> tuple[str, bool]:
        """Given all text so far: the piece now safe to release, and whether a stop sequence ended the text."""
        hits = [i for s in self.stop if (i := text.find(s, max(0, self.sent - len(s) + 1))) >= 0]
        if hits:
            self.text = text[: min(hits)]
            return self.rest(), True
        self.text = text
        held = max(
            (n for s in self.stop for n in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:n])), default=0
        )
        safe = len(text) - held
        piece = text[self.sent : safe] if safe > self.sent else ""
        self.sent = max(self.sent, safe)
        return piece, False

    def rest(self) -> str:
        """Whatever is still held back (at the end of generation it is safe)."""
        piece = self.text[self.sent :]
        self.sent = len(self.text)
        return piece


def final_completion(chunks: Iterable[Chunk]) -> Completion:
    """Drain a stream and return its final completion: `_generate` for engines that decode by streaming."""
    *_, last = chunks
    if last.completion is None:
        raise EngineError("the stream ended without a final chunk")
    return last.completion


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the first stop sequence; say whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
