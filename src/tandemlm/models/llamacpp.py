"""The llama.cpp engine: GGUF models through llama-cpp-python, the embedded default.

Generation runs our own loop over `Llama.generate` so that streaming, stop sequences and usage are
exact and one code path serves `generate` and `stream`. llama.cpp keeps the KV cache of the last
sequence; every operation here starts from the longest prefix it shares with that sequence, so a
follow-up turn, or a logprob query that extends the last one, only evaluates the new tokens.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tandemlm.errors import EngineError, ValidationError, missing_extra
from tandemlm.execution import CancelToken, ModelWorker
from tandemlm.models.base import LanguageModel, check_ids, final_completion, gathered_logprobs
from tandemlm.models.llamacpp_batch import AnswerText, MultiContext, decode_batch
from tandemlm.models.llamacpp_grammar import GrammarState
from tandemlm.structured import call_grammar, response_grammar
from tandemlm.tools import CALL_CLOSE, CALL_OPEN, parse_call, with_tool_prompt
from tandemlm.types import (
    FEATURES,
    Chunk,
    Completion,
    GenerationParams,
    Location,
    LogProbs,
    Message,
    Price,
    Request,
    TokenLogprob,
    ToolCall,
    Usage,
)

MAX_CALLS = 8  # tool calls one answer may make (a small model under a grammar could otherwise go on)
LOOSE_PEEK = 16  # tokens that show whether an answer opening with "{" or "`" is a call object
_LOOSE_CALL = re.compile(r'(?:```(?:json)?\s*)?\{\s*"name"\s*:')

if TYPE_CHECKING:
    from llama_cpp import Llama


THREADS_ENV = "TANDEM_THREADS"


def default_threads() -> int:
    """Threads for a model that names none: $TANDEM_THREADS, else one per CPU. On a CPU that other processes
    share, fewer threads than CPUs run far faster: llama.cpp's threads wait for each other at every layer, so one
    descheduled thread stalls them all."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return os.cpu_count() or 1
    if not raw.isdigit() or int(raw) < 1:
        raise ValidationError(f"{THREADS_ENV} must be a whole number of threads ≥ 1, got {raw!r}")
    return int(raw)


class LlamaCppModel(LanguageModel):
    """A GGUF model run in-process by llama.cpp. The handle has one owner, a `ModelWorker` thread: every
    operation that touches it (a generation, a batch of logits) is submitted there and runs whole, in turn;
    tokenizing reads only the vocabulary and runs on the caller's thread.

    chat_template: use the template stored in the GGUF (True), a Jinja template string of your own,
        or none (False: messages are joined by blank lines, for base models such as gemma3-270m).
    adapter: a GGUF LoRA adapter file (llama.cpp's `lora_path`; `tandem train lora` writes one), applied at scale 1.

    Reusing a cached prefix evaluates the rest of the prompt in a different batch shape than a fresh
    run, which changes the low bits of the logits; at a near-tie that can flip a greedy choice.
    `clear_cache()` first when two runs must match token for token.

    Structured output and tool arguments are decoded under a llama.cpp grammar compiled from their JSON Schema,
    so they parse and validate as they are written. Tools are rendered by the chat template where it takes
    `tools` (Qwen2.5's), else by the packaged tool prompt; either way the model writes `<tool_call>` blocks.
    """

    max_concurrency = 1
    batch_slots = 8
    exact_slots = 3  # greedy sequences per batch step that keep one sequence's kernels (llamacpp_batch.py)
    supports = FEATURES
    constrained = True
    grammars = True

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        location: Location = "edge",
        price: Price | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        chat_template: bool | str = True,
        adapter: str | Path | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(name or Path(path).stem, location=location, price=price)
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError:
            raise missing_extra("llama-cpp-python", "llamacpp") from None
        self._lib = llama_cpp
        threads = n_threads or default_threads()
        try:
            self.llm: Llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=n_batch,
                n_threads=threads,
                n_threads_batch=threads,
                logits_all=False,
                lora_path=str(Path(adapter).expanduser()) if adapter else None,
                verbose=verbose,
            )
        except (ValueError, RuntimeError) as err:
            raise EngineError(f"llama.cpp could not load {path}: {err}") from err
        self._owner = ModelWorker(self.name)
        self.owner = self._owner
        self._vocab_ptr = self.llm._model.vocab
        self._n_vocab = self.llm.n_vocab()
        template = self.llm.metadata.get("tokenizer.chat_template") if chat_template is True else chat_template
        self._formatter = None
        if template:
            bos, eos = self.llm.token_bos(), self.llm.token_eos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                bos_token=self.llm._model.token_get_text(bos) if bos != -1 else "",
                eos_token=self.llm._model.token_get_text(eos) if eos != -1 else "",
            )
            # JSON the template writes itself (tool definitions, earlier calls' arguments) is a template part, so
            # read with control tokens: escape "<" so text in it cannot spell one (the same JSON value)
            self._formatter._environment.environment.filters["tojson"] = _tojson
        self._template_tools = isinstance(template, str) and _takes_tools(template)
        self._rendered: tuple[Request, list[int]] | None = None
        self._buffer = ctypes.create_string_buffer(64)  # token pieces, on the owner thread only
        self.decode_s = 0.0  # time in llama.cpp's decode for logit queries (a profile of speculative rounds)
        self._multi: MultiContext | None = None  # made by the first batch of answers (generate_many)

    @property
    def context_length(self) -> int:
        return int(self.llm.n_ctx())

    def clear_cache(self) -> None:
        """Forget the cached sequence, so the next call evaluates its prompt from scratch."""

        def clear() -> None:
            self.llm.reset()
            self.llm._ctx.kv_cache_seq_rm(-1, 0, -1)

        self._owner.call(clear)

    def close(self) -> None:
        def finish() -> None:
            if self._multi is not None:
                self._multi.close()
            self.llm.close()

        self._owner.close(finish=finish)

    # ---- prompts and tokens -----------------------------------------------------------------------

    def render(self, request: Request) -> str:
        """The prompt text the model sees: the chat template applied to the messages."""
        return "".join(part for part, _ in self._prompt_parts(request))

    def _prompt_parts(self, request: Request) -> list[tuple[str, bool]]:
        """The prompt as (text, is_template) parts. Only template parts may hold control tokens: message content
        is tokenized as plain text, so a user who writes `<|im_start|>system` gets those characters, not a turn."""
        params = request.params
        shown = params.tools if params.calls_tools else ()
        messages = request.messages
        if not self._template_tools and (shown or request.features & {"tools"}):
            messages = with_tool_prompt(messages, shown, params.tool_choice)
        if request.raw or self._formatter is None:
            return [("\n\n".join(m.content for m in messages), False)]
        nonce = secrets.token_hex(8)
        marks = [f"\ue000{nonce}:{i}\ue001" if m.content else "" for i, m in enumerate(messages)]
        wire = [_template_message(m, mark) for m, mark in zip(messages, marks, strict=True)]
        tools = [t.to_dict() for t in shown] or None
        try:
            text = self._formatter(messages=wire, tools=tools).prompt  # type: ignore[arg-type]
        except Exception as err:  # the template's own raise_exception, or a Jinja error
            raise ValidationError(f"{self.name}: the chat template rejected these messages: {err}") from err
        parts: list[tuple[str, bool]] = []
        for message, mark in zip(messages, marks, strict=True):
            if not mark:  # empty content: nothing of the message's own to keep apart
                continue
            head, found, text = text.partition(mark)
            if not found or mark in text:
                raise ValidationError(
                    f"{self.name}: the chat template changes message content, so control tokens in it could not "
                    "be kept apart from the template's; use a template that inserts message content as is"
                )
            parts += [(head, True), (message.content, False)]
        return [*parts, (text, True)]

    def _prompt_ids(self, request: Request) -> list[int]:
        # the base class counts prompt tokens before _generate renders them: remember the last one
        if self._rendered is not None and self._rendered[0] is request:
            return self._rendered[1]
        plain = request.raw or self._formatter is None
        ids: list[int] = []
        for i, (text, template) in enumerate(self._prompt_parts(request)):
            if text:
                ids += self.llm.tokenize(text.encode("utf-8"), add_bos=plain and i == 0, special=template)
        self._rendered = (request, ids)
        return ids

    def _count_prompt_tokens(self, request: Request) -> int:
        return len(self._prompt_ids(request))

    def _prompt_tokens(self, request: Request) -> list[int]:
        return self._prompt_ids(request)

    def _is_end_token(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab_ptr, token))

    def _tokenize(self, text: str, add_special: bool) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True))

    def _detokenize(self, tokens: list[int]) -> str:
        self._check_ids(tokens)
        return self.llm.detokenize(tokens).decode("utf-8", errors="replace")

    def _vocabulary(self) -> list[bytes]:
        get = self._lib.llama_vocab_get_text
        return [bytes(get(self._vocab_ptr, i)) for i in range(self._n_vocab)]

    def _check_ids(self, tokens: Sequence[int]) -> None:
        check_ids(self.name, tokens, self._n_vocab)

    # ---- generation -------------------------------------------------------------------------------

    def _generate(self, request: Request) -> Completion:
        return final_completion(self._run(request))

    def _batchable(self, request: Request) -> bool:
        params = request.params
        return not params.calls_tools and params.response_format is None and params.logprobs is None

    def _generate_many(self, requests: list[Request]) -> list[tuple[Completion, float]]:
        prompts = [self._prompt_ids(r) for r in requests]
        params = [r.params for r in requests]
        (results,) = self._owner.stream(lambda token, emit: emit(decode_batch(self, prompts, params, token)))
        return results

    def multi_context(self, slots: int, per_slot: int) -> MultiContext:
        """On the owner thread: a context of at least `slots` sequences of `per_slot` tokens, kept for the next
        batch."""
        if self._multi is None or self._multi.slots < slots or self._multi.per_slot < per_slot:
            if self._multi is not None:
                self._multi.close()
                self._multi = None
            self._multi = MultiContext(self, slots, per_slot)
        return self._multi

    def _stream(self, request: Request) -> Iterator[Chunk]:
        return self._run(request)

    def _run(self, request: Request) -> Iterator[Chunk]:
        prompt = self._prompt_ids(request)
        return self._owner.stream(lambda token, emit: self._decode(request, prompt, token, emit))

    def _decode(self, request: Request, prompt: list[int], token: CancelToken, emit: Callable[[Chunk], None]) -> None:
        """On the owner thread: the answer, as text pieces and a final chunk. With tools to call, first a few free
        tokens show whether the model opens a call (always, when tool_choice requires one); a call's arguments
        are then decoded under their schema's grammar, text under the response_format's."""
        params = request.params
        # one concrete seed for every pass of this request, so a pass that re-decodes a peeked opening agrees with it
        seed = params.seed if params.seed is not None else secrets.randbelow(2**31)
        if params.calls_tools and (params.tool_choice != "auto" or self._opens_call(prompt, params, seed, token)):
            self._decode_calls(prompt, params, seed, token, emit)
            return
        grammar = response_grammar(params.response_format) if params.response_format is not None else None
        self._decode_text(prompt, params, seed, grammar, token, emit)

    def _sampled(
        self, seq: list[int], params: GenerationParams, seed: int, grammar: str | None
    ) -> Generator[int, Any, None]:
        """Token ids sampled after `seq` as params say: llama.cpp's generator, or under `grammar` our own loop."""
        if grammar is not None:
            return self._under_grammar(seq, params, seed, grammar)
        self.llm.set_seed(seed)
        return self.llm.generate(
            seq, temp=params.temperature, top_p=params.top_p, top_k=0, min_p=0.0, repeat_penalty=1.0
        )

    def _under_grammar(
        self, seq: list[int], params: GenerationParams, seed: int, grammar: str
    ) -> Generator[int, Any, None]:
        """Sampling under a grammar as llama.cpp's own server does it: sample from the model's distribution, and
        only when the grammar rejects that token, mask the whole vocabulary with the grammar and sample again.
        The result is distributed exactly as masked sampling (greedy: the masked argmax), but the grammar checks
        one token at most steps instead of every token of the vocabulary (on SmolLM2's 49k that was most of the
        per-token cost; llama-cpp-python's sampler chain masks the whole vocabulary every step)."""
        lib = self._lib
        rules = lib.llama_sampler_init_grammar(self._vocab_ptr, grammar.encode("utf-8"), b"root")
        if not rules:
            raise ValidationError(f"{self.name}: llama.cpp could not parse the decoding grammar")
        from llama_cpp._internals import LlamaSampler

        chain = LlamaSampler()
        if params.temperature == 0:
            chain.add_greedy()
        else:
            chain.add_top_p(params.top_p, 1)
            chain.add_temp(params.temperature)
            chain.add_dist(seed)
        n, ctx = self._n_vocab, self.llm._ctx.ctx
        every = (lib.llama_token_data * n)()
        columns = np.ctypeslib.as_array(every)
        columns["id"] = np.arange(n)
        one = (lib.llama_token_data * 1)()
        try:
            self._logits(seq, len(seq) - 1)  # the prompt, reusing the cached prefix
            while True:
                chosen = int(lib.llama_sampler_sample(chain.sampler, ctx, -1))
                one[0].id, one[0].logit, one[0].p = chosen, 0.0, 0.0
                lib.llama_sampler_apply(rules, ctypes.byref(lib.llama_token_data_array(one, 1, -1, False)))
                if one[0].logit == -np.inf:  # the grammar rejects it: mask everything, sample again
                    columns["logit"] = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, -1), shape=(n,))
                    columns["p"] = 0.0
                    masked = lib.llama_token_data_array(every, n, -1, False)
                    lib.llama_sampler_apply(rules, ctypes.byref(masked))
                    lib.llama_sampler_apply(chain.sampler, ctypes.byref(masked))
                    chosen = int(every[masked.selected].id)
                lib.llama_sampler_accept(rules, chosen)
                yield chosen
                self.llm.eval([chosen])
        finally:
            lib.llama_sampler_free(rules)
            chain.close()

    def _decode_text(
        self, prompt: list[int], params: GenerationParams, seed: int, grammar: str | None, token: CancelToken,
        emit: Callable[[Chunk], None],
    ) -> None:  # fmt: skip
        """Decode token by token, checking the request's token between tokens. Text is detokenized incrementally
        and released only once it cannot be the start of a stop sequence; logprob entries go with the piece that
        releases their token's text."""
        tokens = self._sampled(prompt, params, seed, grammar)
        answer = AnswerText(self, len(prompt), params)
        scanner, ends = answer.scanner, answer.ends
        entries: list[TokenLogprob] = []
        sent = 0  # entries handed out with pieces
        try:
            for next_id in tokens:
                token.check()
                if self._is_end_token(next_id):
                    answer.finish = "stop"
                    break
                if params.logprobs is not None:
                    entries.append(self._entry(next_id, params.logprobs))
                piece, ended = answer.push(next_id)
                if piece:
                    released = sum(1 for end in ends[sent:] if end <= scanner.sent)
                    emit(Chunk(piece, logprobs=tuple(entries[sent : sent + released])))
                    sent += released
                if ended:
                    break
        finally:
            tokens.close()
        kept = entries
        if params.logprobs is not None:  # the tokens that wrote the answer (not those of a stop sequence cut off)
            kept = entries[: next((i + 1 for i, end in enumerate(ends) if end >= len(scanner.text)), len(entries))]
        if (piece := scanner.rest()) or len(kept) > sent:
            emit(Chunk(piece, logprobs=tuple(kept[sent:])))
        usage = Usage(len(prompt), len(answer.out))
        logprobs = tuple(kept) if params.logprobs is not None else None
        completion = Completion(scanner.text, answer.finish, usage, self.name, logprobs=logprobs)
        emit(Chunk("", answer.finish, completion))

    def _entry(self, chosen: int, top: int) -> TokenLogprob:
        """The chosen token's log-probability under the model's own distribution (before temperature and grammar)
        at this step, and the `top` most likely tokens; read from the logits the token was sampled from."""
        row = np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self.llm._ctx.ctx, -1), shape=(self._n_vocab,))
        dist = LogProbs.from_logits(row)
        alternatives = tuple(self._entry_of(i, v) for i, v in dist.top(top)) if top else ()
        return replace_top(self._entry_of(chosen, dist.logprob(chosen)), alternatives)

    def _entry_of(self, token: int, logprob: float) -> TokenLogprob:
        raw = self._piece(token)
        return TokenLogprob(raw.decode("utf-8", errors="replace"), logprob, raw)

    def _generated(
        self, seq: list[int], params: GenerationParams, seed: int, grammar: str | None, budget: int, token: CancelToken
    ) -> tuple[list[int], bool]:
        """Up to `budget` tokens after `seq`, and whether the model ended (an end token) within them."""
        out: list[int] = []
        tokens = self._sampled(seq, params, seed, grammar)
        try:
            for next_id in tokens:
                token.check()
                if self._is_end_token(next_id):
                    return out, True
                out.append(next_id)
                if len(out) >= budget or len(seq) + len(out) >= self.context_length:
                    break
        finally:
            tokens.close()
        return out, False

    def _opens_call(self, seq: list[int], params: GenerationParams, seed: int, token: CancelToken) -> bool:
        """Whether the model's answer after `seq` opens with a tool call (a few tokens decoded freely): the call
        tag, or a call object written as plain or fenced JSON (`{"name": ...`), as small models often do; the
        call is then decoded in the tag format, under the grammar."""
        budget = min(len(self._text_ids(CALL_OPEN)) + 2, params.max_tokens)
        peek, _ = self._generated(seq, params, seed, None, budget, token)
        text = self.llm.detokenize(peek, special=True).decode("utf-8", errors="replace").lstrip()
        if text.startswith(CALL_OPEN) or not text.startswith(("{", "`")):
            return text.startswith(CALL_OPEN)
        peek, _ = self._generated(seq, params, seed, None, min(LOOSE_PEEK, params.max_tokens), token)
        return bool(_LOOSE_CALL.match(self.llm.detokenize(peek).decode("utf-8", errors="replace").lstrip()))

    def _decode_calls(
        self, prompt: list[int], params: GenerationParams, seed: int, token: CancelToken, emit: Callable[[Chunk], None]
    ) -> None:
        """The answer as tool calls: each opened by the call tag, its `{"name", "arguments"}` object decoded under
        the grammar of the tools' schemas, then closed; one more follows where parallel calls are allowed and the
        model opens another."""
        named = params.tool_choice not in ("auto", "required")
        grammar = call_grammar(params.tools, params.tool_choice if named else None)
        seq = prompt + self._text_ids(f"{CALL_OPEN}\n")
        calls: list[ToolCall] = []
        while True:
            room = params.max_tokens - (len(seq) - len(prompt))
            body, ended = self._generated(seq, params, seed, grammar, max(room, 1), token)
            call = parse_call(self.llm.detokenize(body).decode("utf-8", errors="replace"))
            seq += body
            if call is None or (not ended and room <= len(body)):  # cut by max_tokens inside the call
                text = self.llm.detokenize(seq[len(prompt) :]).decode("utf-8", errors="replace")
                usage = Usage(len(prompt), len(seq) - len(prompt))
                emit(Chunk("", "length", Completion(text, "length", usage, self.name, tool_calls=tuple(calls))))
                return
            calls.append(call)
            seq += self._text_ids(f"\n{CALL_CLOSE}")
            if (
                named
                or not params.parallel_tool_calls
                or len(calls) >= MAX_CALLS
                or len(seq) - len(prompt) >= params.max_tokens
            ):
                break
            if not self._opens_call(seq, params, seed, token):
                break
            seq += self._text_ids(f"\n{CALL_OPEN}\n")
        usage = Usage(len(prompt), len(seq) - len(prompt))
        emit(Chunk("", "tool_calls", Completion("", "tool_calls", usage, self.name, tool_calls=tuple(calls))))

    def constraint(self, grammar: str) -> GrammarState:
        return GrammarState.start(self._lib, self._vocab_ptr, self._n_vocab, grammar, self.name)

    def _text_ids(self, text: str) -> list[int]:
        """Token ids of text the engine writes itself (call tags: control tokens where the vocabulary has them)."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _piece(self, token: int) -> bytes:
        """The bytes of one token, as detokenizing it after others gives them (control tokens render empty)."""
        size = len(self._buffer)
        n = self._lib.llama_token_to_piece(self._vocab_ptr, token, self._buffer, size, 0, False)
        if n < 0:  # longer than the buffer: grow it once for this token
            self._buffer = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self._vocab_ptr, token, self._buffer, -n, 0, False)
        return self._buffer.raw[:n]

    # ---- logits -----------------------------------------------------------------------------------

    def _next_token_logprobs(self, tokens: list[int], top_k: int | None) -> LogProbs:
        return self._logprobs_after(tokens, [len(tokens) - 1], top_k)[0]

    def _logprobs_after(self, tokens: list[int], positions: list[int], top_k: int | None) -> list[LogProbs]:
        self._check_ids(tokens)
        rows = self._owner.call(lambda: self._logits(tokens[: positions[-1] + 1], positions[0]))
        if top_k is None:
            return [LogProbs.from_logits(rows[p - positions[0]]) for p in positions]
        return [_top_logprobs(rows[p - positions[0]], top_k) for p in positions]

    def _token_logprobs(self, tokens: list[int], start: int) -> np.ndarray:
        if start < 1:
            raise ValidationError(f"{self.name}: scoring needs at least one context token before the continuation")
        self._check_ids(tokens)
        rows = self._owner.call(lambda: self._logits(tokens[:-1], start - 1))
        return gathered_logprobs(rows, tokens[start:])

    def _logits(self, tokens: list[int], first: int) -> np.ndarray:
        """Raw logits after each prefix tokens[:i+1] for i >= first, reusing the cached shared prefix."""
        llm = self.llm
        if len(tokens) > self.context_length:
            raise ValidationError(
                f"{self.name}: {len(tokens)} tokens exceed the context window of {self.context_length}"
            )
        keep = 0
        for cached, new in zip(llm.input_ids[: min(llm.n_tokens, first)], tokens, strict=False):
            if cached != new:
                break
            keep += 1
        llm.n_tokens = keep
        llm._ctx.kv_cache_seq_rm(-1, keep, -1)
        rows: list[np.ndarray] = []
        batch = llm._batch
        for start in range(keep, len(tokens), llm.n_batch):
            part = tokens[start : start + llm.n_batch]
            batch.set_batch(batch=part, n_past=start, logits_all=False)
            wanted = [j for j in range(len(part)) if start + j >= first]
            for j in wanted:
                batch.batch.logits[j] = True
            began = time.perf_counter()
            llm._ctx.decode(batch)
            self.decode_s += time.perf_counter() - began
            llm.input_ids[start : start + len(part)] = part
            llm.n_tokens = start + len(part)
            if wanted:
                rows.append(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(wanted), self._n_vocab)).copy())
        llm._requires_eval = False
        return np.concatenate(rows)


def _top_logprobs(row: np.ndarray, k: int) -> LogProbs:
    """The k most likely tokens of a row of raw logits, without normalising the whole vocabulary in float64 (a
    greedy draft or verification asks only for the argmax, once per token)."""
    if k == 1:
        ids = np.array([int(np.argmax(row))])
    else:
        k = min(k, len(row))
        ids = np.argpartition(-row, k - 1)[:k]
        ids = ids[np.argsort(-row[ids], kind="stable")]
    peak = float(row.max())
    log_z = peak + float(np.log(np.exp(row - peak).sum(dtype=np.float64)))
    return LogProbs(vocab_size=len(row), values=row[ids].astype(np.float64) - log_z, ids=ids.astype(np.int64))


def replace_top(entry: TokenLogprob, top: tuple[TokenLogprob, ...]) -> TokenLogprob:
    return TokenLogprob(entry.token, entry.logprob, entry.bytes, top)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:  # fmt: skip
    """Templates' `tojson`, with "<" written as \\u003c: the same JSON, but no control token can be spelled in it."""
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    return text.replace("<", "\\u003c")


def _takes_tools(template: str) -> bool:
    """Whether a Jinja chat template renders `tools` itself."""
    import jinja2
    import jinja2.meta

    try:
        return "tools" in jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(template))
    except jinja2.TemplateError:
        return False


def _template_message(message: Message, content: str) -> dict[str, Any]:
    """A message as chat templates read it (HF's form: a call's arguments as an object), content given."""
    out: dict[str, Any] = {"role": message.role, "content": content}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _arguments(c.arguments)}}
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def load_llamacpp(source: str, **options: Any) -> LlamaCppModel:
    """Build from a model source string (catalog:NAME, path:..., hf://...); catalog models get their template flag."""
    from tandemlm.models.catalog import CATALOG
    from tandemlm.models.sources import resolve

    scheme, _, rest = source.partition(":")
    if scheme in ("catalog", "pypi") and rest in CATALOG and not CATALOG[rest].chat_template:
        options.setdefault("chat_template", False)
    options.setdefault("name", rest if scheme in ("catalog", "pypi") else None)
    return LlamaCppModel(resolve(source), **options)
