"""`JudgeGuard`: the edge model as a safety judge, read from its logits (ShieldGemma's way, no generation).

The model is shown the MLCommons hazard taxonomy as Llama Guard 3 uses it (S1-S14, packaged in
data/prompts/guard.yaml) and the text to judge: a user request (kind "input") or an answer with the
request it answers (kind "output"). P(unsafe) is the model's probability of "unsafe" against "safe" as the
first word of its reply: one forward pass. Only when that is at or above the threshold is the category read,
from the distribution at the next line's first position (one more pass), over the letters the categories are
shown under (a letter is one token, where "S1" and "S10" would share their first ones).
"""

from __future__ import annotations

import re
import string

from tandemlm.collab.confidence import word_logprob, word_odds
from tandemlm.errors import ConfigError
from tandemlm.guard.base import Guard, Kind, Verdict, register
from tandemlm.guard.prompts import guard_prompts
from tandemlm.models.base import LanguageModel
from tandemlm.privacy.boundary import require_edge
from tandemlm.types import GenerationParams, Message, Request

_FIELD = re.compile(r"\{(categories|text|context)\}")
#: how much of the request the judge reads beside an answer window (the window is what it judges)
CONTEXT_CHARS = 1000


@register("judge")
class JudgeGuard(Guard):
    """The edge SLM prompted with the hazard taxonomy; `model` must run on the device (it reads the raw text)."""

    #: the factory's parameters that name a config model (resolved by the runtime)
    model_refs = ("model",)

    def __init__(self, model: LanguageModel, *, threshold: float = 0.5, name: str = "judge") -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"guard {name!r}: threshold must be in [0, 1], got {threshold}")
        require_edge(model, f"guard {name!r}: model", "a guard reads the raw request and answer")
        self.model = model
        self.threshold = threshold
        self.name = name
        spec = guard_prompts()
        self._codes = [code for code, _, _ in spec["categories"]]
        self._letters = string.ascii_uppercase[: len(self._codes)]
        names = [(code, name) for code, name, _ in spec["categories"]]
        self._listing = "\n".join(f"{c}: {n} ({code})." for c, (code, n) in zip(self._letters, names, strict=True))
        head = spec["preamble"] + "\n\n"  # shared by both kinds: a cached prefix between checks
        self._templates: dict[str, str] = {"input": head + spec["input"], "output": head + spec["output"]}
        self._checked_tokens = False

    def _check(self, text: str, kind: Kind, context: str | None) -> Verdict:
        self._check_tokens()
        tokens = self.model.prompt_tokens(self.request(text, kind, context))
        dist = self.model.next_token_logprobs(tokens, role=f"guard-{kind}")
        score = word_odds(self.model, dist, "unsafe", "safe")
        if score < self.threshold:
            return self.verdict(score)
        after = self.model.next_token_logprobs(tokens + self.model.tokenize("unsafe\n"), role=f"guard-{kind}-category")
        letter = max(self._letters, key=lambda c: word_logprob(self.model, after, c))
        return self.verdict(score, self._codes[self._letters.index(letter)])

    def request(self, text: str, kind: Kind, context: str | None) -> Request:
        """The judge's request for `text` (one pass over its prompt; a one-token answer is all it may need)."""
        context = context[-CONTEXT_CHARS:] if context else "(not given)"  # the request an answer answers: its end
        values = {"categories": self._listing, "text": text, "context": context}
        prompt = _FIELD.sub(lambda m: values[m.group(1)], self._templates[kind])  # one pass: text may hold braces
        return Request((Message("user", prompt),), GenerationParams(max_tokens=2))

    def _firsts(self, word: str) -> set[int]:
        """The first tokens of the forms `word_logprob` reads (its capitalisations, with and without a space)."""
        forms = (word, word.capitalize(), " " + word, " " + word.capitalize())
        return {self.model.tokenize(form)[0] for form in forms}

    def _check_tokens(self) -> None:
        """The verdict words and the category letters must start with distinct tokens, or the odds mean nothing."""
        if self._checked_tokens:
            return
        firsts = {w: self._firsts(w) for w in ("safe", "unsafe")}
        if firsts["safe"] & firsts["unsafe"]:
            raise ConfigError(f"guard {self.name!r}: {self.model.name}'s tokenizer starts 'safe' and 'unsafe' alike")
        self._checked_tokens = True
