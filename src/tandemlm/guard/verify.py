"""Fact verification by the edge model (MiniCheck's recipe), and `Verified`, which checks a grounded answer.

`Verifier.check(document, claim)` splits the document into sentence-bounded chunks of at most `chunk_tokens`
tokens, asks the edge SLM whether each chunk supports the claim (the packaged prompt data/prompts/verify.txt)
and reads P(supported) from the logits of the answer tokens "yes" / "no" in one forward pass: no generation.
The claim's score is the best chunk's; `supported` is `score >= threshold` (fitted on a dev split by
`tandem bench verify`). The chunk comes first in the prompt, so claims checked against one chunk share its
cached prefix (llama.cpp reuses it).

A request is **grounded** when its messages hold one or more `<document>...</document>` blocks (in any message:
a system message with the retrieved passages, a user message quoting a source, a tool result): their text is
the context, and nothing else is. `Verified(inner, verifier)` lets `inner` answer, checks every sentence of
the answer against the context, and reports each sentence's verdict in the completion's `verification`
extension (the gateway's `tandem` field) and the unsupported ones in its decision (the trace). With
`regenerate`, an answer with unsupported sentences is asked for once more, naming them, and the second answer
is checked and returned. A request without a `<document>` block is answered unchecked (its report says so).

Streaming: the answer streams as `inner` writes it and the verification arrives in the final chunk's `tandem`
field (verification says what is supported; it does not hold text back: that is a guard's job). With
`regenerate`, the answer must be checked before it could be replaced, so a stream is answered whole at its end.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tandemlm.collab.base import Strategy, decided
from tandemlm.collab.confidence import word_odds
from tandemlm.errors import ValidationError
from tandemlm.models.base import LanguageModel
from tandemlm.privacy.boundary import require_edge
from tandemlm.privacy.detectors import fill, load_prompt
from tandemlm.types import Chunk, Completion, Message, Request

DOCUMENT = re.compile(r"<document>(.*?)</document>", re.DOTALL | re.IGNORECASE)
#: a sentence ends at . ! ? (closing quotes or brackets kept) before white space; not after these abbreviations
_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "no", "fig", "jr", "sr"})
MIN_CLAIM_WORDS = 3  # shorter answer sentences ("Sure!", "In short:") claim nothing worth checking


def sentences(text: str) -> list[str]:
    """The sentences of `text`: split at line breaks and after . ! ? followed by white space, except after
    an abbreviation (Dr., e.g., p.m.) or an initial (J.) or before a lowercase letter; stripped, empty dropped."""
    out: list[str] = []
    for line in text.splitlines():
        start = 0
        for m in _END.finditer(line):
            before = line[start : m.start()].rsplit(None, 1)
            word = before[-1].rstrip(".!?\"')]").lower() if before else ""
            following = line[m.end() : m.end() + 1]
            if word in _ABBREVIATIONS or "." in word or (len(word) == 1 and word.isalpha()) or following.islower():
                continue
            out.append(line[start : m.start()].strip())
            start = m.end()
        out.append(line[start:].strip())
    return [s for s in out if s]


@dataclass(frozen=True)
class Support:
    """A verifier's answer for one claim: `score` is P(supported) of the best chunk (index `chunk`), `supported`
    is `score >= threshold`; `latency_ms` covers the claim's forward passes."""

    supported: bool
    score: float
    chunk: int
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"supported": self.supported, "score": round(self.score, 6), "latency_ms": round(self.latency_ms, 3)}


class Verifier:
    """MiniCheck-style fact checking with an edge SLM: max over sentence-bounded chunks of P("yes")."""

    def __init__(
        self, model: LanguageModel, *, threshold: float = 0.5, chunk_tokens: int = 400, name: str | None = None
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValidationError(f"a verifier's threshold is a probability in [0, 1], got {threshold}")
        if chunk_tokens < 16:
            raise ValidationError(f"chunk_tokens must be at least 16, got {chunk_tokens}")
        self.model, self.threshold, self.chunk_tokens = model, float(threshold), chunk_tokens
        self.name = name or f"verifier({model.name})"
        self.prompt = load_prompt("verify")

    def chunks(self, document: str) -> list[str]:
        """The document as chunks of whole sentences, each at most `chunk_tokens` tokens (counted sentence by
        sentence); a sentence longer than that is cut at word bounds into pieces of at most the budget."""
        pieces: list[tuple[str, int]] = []
        for s in sentences(document):
            n = len(self.model.tokenize(s))
            pieces += [(s, n)] if n <= self.chunk_tokens else self._cut(s)
        out: list[str] = []
        current: list[str] = []
        size = 0
        for text, n in pieces:
            if current and size + n > self.chunk_tokens:
                out.append(" ".join(current))
                current, size = [], 0
            current.append(text)
            size += n
        if current:
            out.append(" ".join(current))
        return out

    def _cut(self, sentence: str) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        current = ""
        for word in sentence.split():
            candidate = f"{current} {word}" if current else word
            if current and len(self.model.tokenize(candidate)) > self.chunk_tokens:
                out.append((current, len(self.model.tokenize(current))))
                candidate = word
            current = candidate
        if current:
            out.append((current, len(self.model.tokenize(current))))
        return out

    def score(self, chunk: str, claim: str) -> float:
        """P(the chunk supports the claim): "yes" against "no" right after the packaged question."""
        request = Request.of(fill(self.prompt, document=chunk, claim=claim), max_tokens=1)
        dist = self.model.next_token_logprobs(self.model.prompt_tokens(request), role="verify")
        return word_odds(self.model, dist)

    def check(self, document: str, claim: str) -> Support:
        """Whether `document` supports `claim`: the best chunk's P(supported) against the threshold."""
        return self.check_many(document, [claim])[0]

    def check_many(self, document: str, claims: Sequence[str]) -> list[Support]:
        """`check` for several claims against one document, chunk by chunk (each chunk's prefix is evaluated
        once for all the claims)."""
        if not document.strip():
            raise ValidationError("the document to verify against is empty")
        if any(not c.strip() for c in claims):
            raise ValidationError("a claim to verify is empty")
        chunks = self.chunks(document)
        scores = [[0.0] * len(chunks) for _ in claims]
        spent = [0.0] * len(claims)
        for j, chunk in enumerate(chunks):
            for i, claim in enumerate(claims):
                t0 = time.perf_counter()
                scores[i][j] = self.score(chunk, claim)
                spent[i] += time.perf_counter() - t0
        out = []
        for row, seconds in zip(scores, spent, strict=True):
            best = max(range(len(row)), key=row.__getitem__)
            out.append(Support(row[best] >= self.threshold, row[best], best, seconds * 1000))
        return out


def grounding(request: Request) -> str | None:
    """The context of a grounded request: the text of its `<document>` blocks, joined; None when it has none."""
    found = [m.group(1).strip() for message in request.messages for m in DOCUMENT.finditer(message.content)]
    found = [d for d in found if d]
    return "\n\n".join(found) if found else None


def claims_of(answer: str) -> list[str]:
    """The sentences of an answer that make a claim: at least MIN_CLAIM_WORDS words, not a question."""
    return [s for s in sentences(answer) if len(s.split()) >= MIN_CLAIM_WORDS and not s.endswith("?")]


class Verified(Strategy):
    """`inner` answers; every sentence of a grounded answer is checked against the request's documents."""

    def __init__(
        self, inner: LanguageModel, verifier: Verifier, *, regenerate: bool = False, name: str | None = None
    ) -> None:
        super().__init__(name or f"verified({inner.name})", (inner, verifier.model), context_from=(inner,))
        require_edge(verifier.model, f"{self.name}: verifier", "it reads the request's documents and the answer")
        self.inner, self.verifier, self.regenerate = inner, verifier, regenerate
        self.again = load_prompt("verify_regenerate")

    @property
    def features(self) -> frozenset[str]:
        """The inner model's: the verifier only reads text, whatever the request asks of the answer."""
        return self.inner.features

    def refusal(self, feature: str) -> str:
        return self.inner.refusal(feature)

    def report(self, context: str, answer: Completion, *, structured: bool = False) -> dict[str, Any]:
        """Each claim-making sentence of the answer with its verdict (a structured answer and tool calls are not
        prose and are not checked)."""
        if structured or answer.tool_calls or not answer.text.strip():
            claims: list[str] = []
        else:
            claims = claims_of(answer.text)
        verdicts = self.verifier.check_many(context, claims) if claims else []
        rows = [{"text": c, **v.to_dict(), "chunk": v.chunk} for c, v in zip(claims, verdicts, strict=True)]
        return {
            "grounded": True,
            "verifier": self.verifier.name,
            "threshold": self.verifier.threshold,
            "sentences": rows,
            "unsupported": sum(not r["supported"] for r in rows),
            "latency_ms": round(sum(v.latency_ms for v in verdicts), 3),
        }

    def retry(self, request: Request, answer: Completion, report: dict[str, Any]) -> Request:
        """The request once more, with the first answer and its unsupported sentences named."""
        flagged = "\n".join(f"- {r['text']}" for r in report["sentences"] if not r["supported"])
        follow = (Message("assistant", answer.text), Message("user", fill(self.again, flagged=flagged)))
        return replace(request, messages=(*request.messages, *follow))

    def _answer(self, request: Request, context: str) -> Completion:
        structured = request.params.response_format is not None
        answer = self.inner.generate(request, role="answer")
        report = self.report(context, answer, structured=structured)
        if self.regenerate and report["unsupported"]:
            first = [r["text"] for r in report["sentences"] if not r["supported"]]
            answer = self.inner.generate(self.retry(request, answer, report), role="regenerate")
            report = {
                **self.report(context, answer, structured=structured),
                "regenerated": True,
                "flagged_before": first,
            }
        return _stamped(answer, report)

    def _generate(self, request: Request) -> Completion:
        context = grounding(request)
        if context is None:
            return _unchecked(self.inner.generate(request, role="answer"))
        return self._answer(request, context)

    def _stream(self, request: Request) -> Iterator[Chunk]:
        context = grounding(request)
        if context is not None and self.regenerate:
            answer = self._answer(request, context)
            yield Chunk(answer.text, answer.finish_reason, answer, answer.logprobs or ())
            return
        for chunk in self.inner.stream(request, role="answer"):
            if chunk.completion is None:
                yield chunk
                continue
            final = chunk.completion
            structured = request.params.response_format is not None
            done = (
                _unchecked(final)
                if context is None
                else _stamped(final, self.report(context, final, structured=structured))
            )
            yield replace(chunk, completion=done)


def _unchecked(answer: Completion) -> Completion:
    report = {"grounded": False, "sentences": [], "unsupported": 0}
    why = "verify: not grounded (no <document> block in the request); the answer is unchecked"
    return decided(replace(answer, extensions={**answer.extensions, "verification": report}), why)


def _stamped(answer: Completion, report: dict[str, Any]) -> Completion:
    rows = report["sentences"]
    bad = [r for r in rows if not r["supported"]]
    how = "; regenerated once" if report.get("regenerated") else ""
    if bad:
        named = "; ".join(f"{r['text'][:80]!r} ({r['score']:.2f})" for r in bad)
        why = f"verify: {len(bad)} of {len(rows)} sentences unsupported{how}: {named}"
    else:
        why = f"verify: all {len(rows)} sentences supported{how}"
    return decided(replace(answer, extensions={**answer.extensions, "verification": report}), why)
