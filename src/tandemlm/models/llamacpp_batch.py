"""Several plain-text answers decoded together on one llama.cpp model: continuous batching.

On a CPU one decode step over several sequences costs little more than over one, because the weights are read
once per step either way. `decode_batch` keeps several sequences in a multi-sequence llama.cpp context: each step
evaluates the newest token of every live sequence in one batch, and a sequence that ends hands its slot to the next
waiting request.

How many slots (`tandem bench batching`, `bench/results/batching.md`: tokens/s by sequences per step, and greedy
answers that differ from the request alone): llama.cpp's CPU kernels multiply fewer than four sequences'
activations one by one, as for a single sequence, and four or more in blocks of four (a GEMM that rounds
differently, so a near-tie can flip a token: 2 of 4 greedy answers on the 1.5B there). So greedy requests run at most
`exact_slots` (3) at a time, and their answers are exactly those of `generate` (tested); sampled requests, draws
anyway, fill up to `batch_slots` (8).

Each sequence keeps a KV cache of its own (see `MultiContext`). Sampling draws from the distribution the
one-request path draws from (top-p over the model's distribution, then temperature, llama-cpp-python's order),
with a numpy generator seeded by the request's seed: a seed gives the same samples on every run of the same batch,
other samples than it gives alone.
"""

from __future__ import annotations

import codecs
import ctypes
import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tandemlm.errors import EngineError
from tandemlm.execution import CancelToken
from tandemlm.models.base import StopScanner
from tandemlm.types import Completion, FinishReason, GenerationParams, Usage

if TYPE_CHECKING:
    from tandemlm.models.llamacpp import LlamaCppModel


class AnswerText:
    """An answer's tokens and text as they are decoded, one request alone or in a batch: each token's piece goes
    through an incremental UTF-8 decoder (a split character waits for its rest; the first piece as a whole
    detokenize gives it, as that may drop a leading space), and the text is scanned for stop sequences."""

    def __init__(self, model: LlamaCppModel, prompt_tokens: int, params: GenerationParams) -> None:
        self._model, self._room = model, min(params.max_tokens, model.context_length - prompt_tokens)
        self.scanner = StopScanner(params.stop)
        self.out: list[int] = []
        self.ends: list[int] = []  # text length after each token
        self.finish: FinishReason = "length"
        self._text = ""
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="ignore")

    def push(self, token: int) -> tuple[str, bool]:
        """Add a token that is not an end token: the text it releases, and whether the answer has ended (at a
        stop sequence, max_tokens or the context's end)."""
        self.out.append(token)
        model = self._model
        self._text += self._utf8.decode(model.llm.detokenize(self.out) if len(self.out) == 1 else model._piece(token))
        self.ends.append(len(self._text))
        piece, stopped = self.scanner.update(self._text)
        if stopped:
            self.finish = "stop"
        return piece, stopped or len(self.out) >= self._room


@dataclass
class _Sequence:
    """One request in a slot."""

    prompt: list[int]
    params: GenerationParams
    rng: np.random.Generator
    answer: AnswerText
    started: float = field(default_factory=time.perf_counter)


class MultiContext:
    """A llama.cpp context of `slots` sequences of up to `per_slot` tokens, beside the model's own one-sequence
    context (whose cached prefix it leaves alone); with the model's LoRA adapter, if it has one.

    Each sequence has a KV cache of its own (llama.cpp's non-unified cache). In one cache shared by all, attention
    runs over every sequence's cells, masked, which costs more per token and moves the logits off those of the
    prompt alone (a one-off check on Qwen2.5-Coder-0.5B, not a repo command, saw up to 0.7); with a cache each they
    are the same to the last bit (the exactness test in tests/models/test_llamacpp_batch.py)."""

    def __init__(self, model: LlamaCppModel, slots: int, per_slot: int) -> None:
        from llama_cpp._internals import LlamaContext

        lib, llm = model._lib, model.llm
        # the model's own context's parameters (threads, attention kernels, KV types), for as many sequences
        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        params.n_ctx, params.n_seq_max, params.kv_unified = slots * per_slot, slots, False
        try:
            self.context = LlamaContext(model=llm._model, params=params, verbose=False)
        except ValueError as err:
            raise EngineError(f"{model.name}: llama.cpp could not make a {slots}-sequence context: {err}") from err
        if llm._lora_adapter is not None:
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(llm._lora_adapter)
            if lib.llama_set_adapters_lora(self.context.ctx, adapters, 1, (ctypes.c_float * 1)(llm.lora_scale)):
                raise EngineError(f"{model.name}: llama.cpp could not apply the LoRA adapter to the batch context")
        self.slots, self.per_slot, self.n_batch = slots, per_slot, int(params.n_batch)
        self.batch = lib.llama_batch_init(self.n_batch, 0, 1)
        self._lib = lib

    def close(self) -> None:
        self._lib.llama_batch_free(self.batch)
        self.context.close()

    def clear(self) -> None:
        """Empty every slot (a batch cancelled mid-way leaves its sequences behind)."""
        self._lib.llama_memory_clear(self.context.memory, True)

    def forget(self, slot: int) -> None:
        self._lib.llama_memory_seq_rm(self.context.memory, slot, -1, -1)

    def decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> None:
        """Evaluate (token, position, slot, wants_logits) entries in one llama.cpp batch."""
        batch = self.batch
        batch.n_tokens = len(entries)
        for j, (token, pos, slot, wants) in enumerate(entries):
            batch.token[j], batch.pos[j], batch.n_seq_id[j], batch.logits[j] = token, pos, 1, wants
            batch.seq_id[j][0] = slot
        code = self._lib.llama_decode(self.context.ctx, batch)
        if code != 0:
            raise EngineError(f"llama.cpp could not decode a batch of {len(entries)} tokens (code {code})")

    def row(self, j: int, n_vocab: int) -> np.ndarray:
        """The logits of batch entry j of the last decode."""
        return np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self.context.ctx, j), shape=(n_vocab,))


def decode_batch(
    model: LlamaCppModel, prompts: list[list[int]], params: list[GenerationParams], token: CancelToken
) -> list[tuple[Completion, float]]:
    """On the model's owner thread: each prompt's answer, and the seconds from its admission to its end."""
    sampled = all(p.temperature > 0 for p in params)
    slots = min(len(prompts), model.batch_slots if sampled else model.exact_slots)
    need = max(len(p) + q.max_tokens for p, q in zip(prompts, params, strict=True))
    multi = model.multi_context(slots, -(-min(need, model.context_length) // 256) * 256)
    multi.clear()
    waiting = deque(range(len(prompts)))
    live: dict[int, tuple[int, _Sequence]] = {}  # slot -> (request index, sequence)
    free = list(range(slots - 1, -1, -1))
    done: list[tuple[Completion, float] | None] = [None] * len(prompts)
    n_vocab = model._n_vocab

    def settle(slot: int, index: int, seq: _Sequence) -> None:
        answer = seq.answer
        answer.scanner.rest()
        completion = Completion(answer.scanner.text, answer.finish, Usage(len(seq.prompt), len(answer.out)), model.name)
        done[index] = (completion, time.perf_counter() - seq.started)
        multi.forget(slot)
        free.append(slot)

    def advance(slot: int, index: int, seq: _Sequence, row: np.ndarray) -> None:
        chosen = _choose(row, seq)
        if model._is_end_token(chosen):
            seq.answer.finish = "stop"
            settle(slot, index, seq)
        elif seq.answer.push(chosen)[1]:
            settle(slot, index, seq)
        else:
            live[slot] = (index, seq)

    while waiting or live:
        token.check()
        while waiting and free:
            index, slot = waiting.popleft(), free.pop()
            prompt, p = prompts[index], params[index]
            seed = p.seed if p.seed is not None else secrets.randbelow(2**31)
            seq = _Sequence(prompt, p, np.random.default_rng(seed), AnswerText(model, len(prompt), p))
            start = 0
            for start in range(0, len(prompt), multi.n_batch):
                part = prompt[start : start + multi.n_batch]
                multi.decode([(t, start + j, slot, start + j == len(prompt) - 1) for j, t in enumerate(part)])
            advance(slot, index, seq, multi.row(len(prompt) - 1 - start, n_vocab))
        if not live:
            continue
        order = list(live.items())
        live.clear()
        multi.decode([(s.answer.out[-1], len(s.prompt) + len(s.answer.out) - 1, slot, True) for slot, (_, s) in order])
        for j, (slot, (index, seq)) in enumerate(order):
            advance(slot, index, seq, multi.row(j, n_vocab))
    return [result for result in done if result is not None]


def _choose(row: np.ndarray, seq: _Sequence) -> int:
    """The next token: the argmax when greedy; else top-p over the model's distribution, then temperature."""
    p = seq.params
    if p.temperature == 0:
        return int(np.argmax(row))
    logits = row.astype(np.float64)
    keep = np.arange(len(logits))
    if p.top_p < 1.0:
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        order = np.argsort(-probs, kind="stable")
        keep = order[: int(np.searchsorted(np.cumsum(probs[order]), p.top_p)) + 1]
    scaled = logits[keep] / p.temperature
    weights = np.exp(scaled - scaled.max())
    return int(keep[seq.rng.choice(len(keep), p=weights / weights.sum())])
