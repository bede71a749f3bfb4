"""Drafts that cost no model: prompt lookup (n-gram matches against the prompt and the answer so far).

An answer that copies its input (an edit of given code, a quoted passage, a repeated identifier) can be
drafted by finding the last few tokens earlier in the context and proposing what followed them there:
HF's `prompt_lookup_num_tokens`, vLLM's `ngram` speculative method, llama.cpp's lookup decoding. The draft
is deterministic (q is one-hot), so the speculative accept rule stays lossless (see collab/speculative.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

DrafterKind = Literal["model", "lookup", "hybrid"]
DRAFTERS: tuple[DrafterKind, ...] = ("model", "lookup", "hybrid")


class PromptLookup:
    """Proposes the tokens that followed the most recent earlier occurrence of the context's last n tokens,
    trying n from `max_n` down to `min_n` (a longer match is a surer one)."""

    def __init__(self, *, min_n: int = 2, max_n: int = 4) -> None:
        if not 1 <= min_n <= max_n:
            raise ValueError(f"need 1 <= min_n <= max_n, got min_n={min_n}, max_n={max_n}")
        self.min_n, self.max_n = min_n, max_n

    def propose(self, context: Sequence[int], k: int) -> list[int]:
        """Up to k tokens continuing `context` as an earlier match of its suffix continued; [] when none."""
        if k < 1 or len(context) <= self.min_n:
            return []
        seq = np.asarray(context, dtype=np.int64)
        size = len(seq)
        for n in range(min(self.max_n, size - 1), self.min_n - 1, -1):
            # windows starting at 0 .. size-n-1: each has at least one token after it, and the suffix itself
            # (starting at size-n) is not among them
            windows = sliding_window_view(seq[:-1], n)
            hits = np.flatnonzero((windows == seq[-n:]).all(axis=1))
            if len(hits):
                start = int(hits[-1]) + n
                return seq[start : start + k].tolist()
        return []


def next_lookup_k(k: int, proposed: int, accepted: int, k_max: int) -> int:
    """How many lookup tokens to propose next: twice as many after a draft the target took whole (a copied run
    goes on), one more than were accepted otherwise (on a CPU each verified position costs time)."""
    if proposed and accepted == proposed:
        return min(k_max, max(k, 2 * proposed))
    return max(1, min(k_max, accepted + 1))
