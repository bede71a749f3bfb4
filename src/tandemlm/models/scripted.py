"""`ScriptedModel`: a test double that returns given text and given logits, exactly and instantly.

Public API (pydantic-ai's `TestModel` idea): cascades, speculative decoding and fusion become
testable exactly, in milliseconds, without loading a real model.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from tandemlm.errors import EngineError, ValidationError
from tandemlm.execution import CancelToken, ModelWorker, current_token
from tandemlm.models.base import LanguageModel, apply_stop, final_completion
from tandemlm.tools import parse_calls
from tandemlm.types import (
    FEATURES,
    Chunk,
    Completion,
    FinishReason,
    Location,
    LogProbs,
    Price,
    Request,
    TokenLogprob,
    Usage,
)

Reply = str | BaseException
Logits = Sequence[float] | np.ndarray
DEFAULT_VOCAB: tuple[str, ...] = ("<unk>", *(chr(i) for i in range(1, 256)))


class ScriptedModel(LanguageModel):
    """Answers from a script.

    replies: one text for every request, a list consumed in order (an exception in it is raised at
        its turn), or a function of the request.
    logits: raw next-token logits: a function of the token prefix, or a list consumed in call order.
    vocab: token strings by id; tokenization is greedy longest match, unknown characters map to id 0.
        The default is one token per Latin-1 character.
    delay_s: time each answer takes (slept before it, or spread over the streamed pieces), to
        exercise queues, timeouts and disconnects; a cancelled request stops sleeping at once.
    max_concurrency: as on LanguageModel; set 1 to act like a local model: answers are then run by a
        `ModelWorker` owner thread, one at a time, as a llama.cpp handle's are.
    end_token: the id that ends generation, for token-level strategies.

    With tools in the request, `<tool_call>` blocks in a reply become its tool calls (the format models write).
    A reply is not held to the request's response_format: a broken one is retried once and then an error, as
    a remote model's is. Logprobs: each reply token gets log-probability 0 (the script is certain), its only
    alternative itself.
    """

    supports = FEATURES

    def __init__(
        self,
        replies: Reply | Sequence[Reply] | Callable[[Request], str] = "",
        *,
        logits: Callable[[Sequence[int]], Logits] | Sequence[Logits] | None = None,
        vocab: Sequence[str] = DEFAULT_VOCAB,
        name: str = "scripted",
        location: Location = "edge",
        price: Price | None = None,
        context_length: int | None = None,
        delay_s: float = 0.0,
        max_concurrency: int | None = None,
        end_token: int | None = None,
    ) -> None:
        super().__init__(name, location=location, price=price)
        self.delay_s = delay_s
        self.max_concurrency = max_concurrency
        self.owner = ModelWorker(name) if max_concurrency == 1 else None
        self.end_token = end_token
        if isinstance(replies, (str, BaseException)):
            replies = itertools.repeat(replies)  # type: ignore[assignment]
        self._replies: Callable[[Request], str] | Iterator[Reply]
        self._replies = replies if callable(replies) else iter(replies)  # type: ignore[arg-type]
        self._logits: Callable[[Sequence[int]], Logits] | Iterator[Logits] | None
        self._logits = logits if logits is None or callable(logits) else iter(logits)
        self.vocab = tuple(vocab)
        self._ids = {piece: i for i, piece in enumerate(self.vocab)}
        self._longest = max(len(p) for p in self.vocab)
        self._context_length = context_length
        self.requests: list[Request] = []  # every request seen, for assertions

    @property
    def context_length(self) -> int | None:
        return self._context_length

    def _reply(self, request: Request) -> str:
        self.requests.append(request)
        if callable(self._replies):
            return self._replies(request)
        reply = next(self._replies, None)
        if reply is None:
            raise EngineError(f"{self.name}: the script ran out of replies after {len(self.requests) - 1} requests")
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def _answer(self, request: Request) -> tuple[list[str], Completion]:
        reply = self._reply(request)
        if request.params.calls_tools:
            text, calls = parse_calls(reply)
            if calls:
                usage = Usage(self._count_prompt_tokens(request), len(self.tokenize(reply)))
                return [], Completion(text, "tool_calls", usage, self.name, tool_calls=calls)
        pieces = [self.vocab[t] for t in self.tokenize(reply)]
        finish: FinishReason = "stop"
        if len(pieces) > request.params.max_tokens:
            pieces, finish = pieces[: request.params.max_tokens], "length"
        text, stopped = apply_stop("".join(pieces), request.params.stop)
        if stopped:
            pieces, finish = [self.vocab[t] for t in self.tokenize(text)], "stop"
        usage = Usage(self._count_prompt_tokens(request), len(pieces))
        k = request.params.logprobs
        logprobs = None if k is None else tuple(_certain(piece, k) for piece in pieces)
        return pieces, Completion(text, finish, usage, self.name, logprobs=logprobs)

    def _generate(self, request: Request) -> Completion:
        return final_completion(self._stream(request))

    def _stream(self, request: Request) -> Iterator[Chunk]:
        if self.owner is None:
            return self._play(request, current_token())
        return self.owner.stream(lambda token, emit: self._emit(request, token, emit))

    def _emit(self, request: Request, token: CancelToken, emit: Callable[[Chunk], None]) -> None:
        for chunk in self._play(request, token):
            emit(chunk)

    def _play(self, request: Request, token: CancelToken) -> Iterator[Chunk]:
        pieces, completion = self._answer(request)
        for i, piece in enumerate(pieces):
            if self.delay_s:
                token.sleep(self.delay_s / len(pieces))
            yield Chunk(piece, logprobs=completion.logprobs[i : i + 1] if completion.logprobs else ())
        if self.delay_s and not pieces:
            token.sleep(self.delay_s)
        yield Chunk("", completion.finish_reason, completion)

    def close(self) -> None:
        if self.owner is not None:
            self.owner.close()

    def _next_token_logprobs(self, tokens: list[int], top_k: int | None) -> LogProbs:
        if self._logits is None:
            raise EngineError(f"{self.name}: no logits were scripted")
        raw = self._logits(tokens) if callable(self._logits) else next(self._logits, None)
        if raw is None:
            raise EngineError(f"{self.name}: the script ran out of logits")
        out = LogProbs.from_logits(np.asarray(raw))
        if out.vocab_size != len(self.vocab):
            raise EngineError(
                f"{self.name}: scripted logits have {out.vocab_size} entries, the vocabulary {len(self.vocab)}"
            )
        return out.keep_top(top_k)

    def _tokenize(self, text: str, add_special: bool) -> list[int]:
        ids, i = [], 0
        while i < len(text):
            for n in range(min(self._longest, len(text) - i), 0, -1):
                if (hit := self._ids.get(text[i : i + n])) is not None:
                    ids.append(hit)
                    i += n
                    break
            else:
                ids.append(0)
                i += 1
        return ids

    def _detokenize(self, tokens: list[int]) -> str:
        if any(not 0 <= t < len(self.vocab) for t in tokens):
            raise ValidationError(f"{self.name}: token ids must be in [0, {len(self.vocab)})")
        return "".join(self.vocab[t] for t in tokens)

    def _vocabulary(self) -> list[bytes]:
        return [p.encode() for p in self.vocab]

    def _count_prompt_tokens(self, request: Request) -> int:
        return len(self._prompt_tokens(request))

    def _prompt_tokens(self, request: Request) -> list[int]:
        return [t for m in request.messages for t in self.tokenize(m.content)]

    def _is_end_token(self, token: int) -> bool:
        return token == self.end_token


def _certain(piece: str, top: int) -> TokenLogprob:
    entry = TokenLogprob(piece, 0.0, piece.encode("utf-8"))
    return TokenLogprob(piece, 0.0, entry.bytes, (entry,) if top else ())
