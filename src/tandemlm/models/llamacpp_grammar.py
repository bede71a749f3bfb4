"""llama.cpp's grammar sampler as a `Constraint` (llamacpp.py's `constraint()`), for strategies that decode
token by token (speculative decoding, fusion) under a GBNF grammar."""

from __future__ import annotations

import ctypes
import weakref
from typing import Any

import numpy as np

from tandemlm.errors import EngineError, ValidationError
from tandemlm.types import LogProbs


class GrammarState:
    """llama.cpp's grammar sampler over a model's vocabulary, as a `Constraint` for token-level strategies. It
    reads only the vocabulary, never the context, so the strategy's own thread drives it."""

    def __init__(self, lib: Any, n_vocab: int, sampler: Any) -> None:
        self._lib, self._n, self._sampler = lib, n_vocab, sampler
        self._free = weakref.finalize(self, lib.llama_sampler_free, sampler)

    @classmethod
    def start(cls, lib: Any, vocab: Any, n_vocab: int, grammar: str, model_name: str) -> GrammarState:
        """A fresh grammar sampler over a loaded model's vocabulary (`vocab`: its llama_vocab pointer)."""
        sampler = lib.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
        if not sampler:
            raise ValidationError(f"{model_name}: llama.cpp could not parse the decoding grammar")
        return cls(lib, n_vocab, sampler)

    def mask(self, dist: LogProbs) -> LogProbs:
        ids = np.arange(self._n) if dist.ids is None else dist.ids
        data = (self._lib.llama_token_data * len(ids))()
        columns = np.ctypeslib.as_array(data)
        columns["id"], columns["logit"], columns["p"] = ids, dist.values, 0.0
        self._lib.llama_sampler_apply(
            self._sampler, ctypes.byref(self._lib.llama_token_data_array(data, len(ids), -1, False))
        )
        allowed = np.isfinite(columns["logit"])
        if not allowed.any():
            raise EngineError("the decoding grammar allows none of the tokens offered")
        if dist.ids is None:
            return LogProbs.from_logits(np.where(allowed, dist.values, -np.inf))
        kept = dist.values[allowed]
        total = float(np.logaddexp.reduce(kept))
        return LogProbs.from_top(
            dist.vocab_size, list(zip(dist.ids[allowed].tolist(), (kept - total).tolist(), strict=True))
        )

    def allows(self, token: int) -> bool:
        one = (self._lib.llama_token_data * 1)()
        one[0].id, one[0].logit, one[0].p = token, 0.0, 0.0
        self._lib.llama_sampler_apply(self._sampler, ctypes.byref(self._lib.llama_token_data_array(one, 1, -1, False)))
        return bool(np.isfinite(one[0].logit))

    def accept(self, token: int) -> None:
        self._lib.llama_sampler_accept(self._sampler, token)

    def copy(self) -> GrammarState:
        return GrammarState(self._lib, self._n, self._lib.llama_sampler_clone(self._sampler))
