"""`Guarded`: a `LanguageModel` that screens what goes into and comes out of any inner model or strategy.

Input: the request's user and tool messages are screened on the device before the inner model is called. A
blocked request reaches no model (nothing leaves the device): a `ContentFilteredError` (the gateway's 400
`content_filter`), or with `on_block="refuse"` the configured refusal as the answer (finish reason
`content_filter`).

Output, streams included: text is released only after the output guard has passed it. The answer is screened
in windows of `window` characters that advance by `window - overlap`; of each passed window the last `overlap`
characters are held back and screened again at the head of the next one, so an unsafe span of up to
`overlap` characters that straddles two windows is caught before any of it is released. A flagged window
stops the inner model and ends the answer with finish reason `content_filter`: the text released so far, or
(`on_block="refuse"`) the refusal after it (a plain answer, of which nothing was shown yet, is then the
refusal alone). Plain answers are screened in the same windows, so both paths judge the same segments.

Every check is a trace event (model: the guard that decided, operation "guard", role guard-input /
guard-output; its decision names the window, the score and the category; its latency is the check's).
A guard that raises fails closed (`GuardError`: nothing is sent or released) unless `fail="open"`.

Order with the PII gatekeeper: the runtime puts `Guarded` outside it, so the input guard sees the raw
request on the device (before any masking) and the output guard the restored answer the user would read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Literal

from tandemlm.collab.base import Strategy, decided, decided_stream
from tandemlm.errors import (
    ContentFilteredError,
    ContextLengthError,
    DeadlineExceededError,
    EngineError,
    GuardError,
    RequestCancelledError,
    ValidationError,
)
from tandemlm.guard.base import Guard, Kind, Verdict
from tandemlm.guard.prompts import guard_prompts, hazards
from tandemlm.models.base import LanguageModel
from tandemlm.trace import record
from tandemlm.types import Chunk, Completion, Request, TraceEvent, Usage

OnBlock = Literal["error", "refuse"]
Fail = Literal["closed", "open"]
#: the roles whose messages the input guard reads (system prompts are the operator's; answers were screened)
SCREENED_ROLES = ("user", "tool")


class Guarded(Strategy):
    """`inner` behind an `input` guard (the request) and an `output` guard (the answer, in windows)."""

    carries = frozenset()
    not_carried = (
        "the output guard screens the answer's text: tool calls and per-token logprobs would pass around it, and "
        "a cut answer cannot keep a response_format; send such requests to a pipeline without a guard"
    )

    def __init__(
        self,
        inner: LanguageModel,
        *,
        input: Guard | None = None,  # the name the config block uses
        output: Guard | None = None,
        on_block: OnBlock = "error",
        refusal: str | None = None,
        window: int = 200,
        overlap: int = 50,
        fail: Fail = "closed",
        name: str | None = None,
    ) -> None:
        super().__init__(name or inner.name, [inner])
        if input is None and output is None:
            raise ValidationError(f"{self.name}: a guarded pipeline needs an input guard, an output guard or both")
        if on_block not in ("error", "refuse"):
            raise ValidationError(f"{self.name}: on_block must be 'error' or 'refuse', got {on_block!r}")
        if fail not in ("closed", "open"):
            raise ValidationError(f"{self.name}: fail must be 'closed' or 'open', got {fail!r}")
        if not 0 <= overlap < window:
            raise ValidationError(f"{self.name}: need 0 <= overlap < window, got window={window}, overlap={overlap}")
        self.inner = inner
        self.input, self.output = input, output
        self.on_block: OnBlock = on_block
        self.refusal_text: str = refusal if refusal is not None else guard_prompts()["refusal"]
        self.window, self.overlap = window, overlap
        self.fail: Fail = fail

    # ---- answering ------------------------------------------------------------------------------------

    def _generate(self, request: Request) -> Completion:
        refused = self._screen_input(request)
        if refused is not None:
            return refused
        answer = self.inner.generate(request, role="guarded")
        if self.output is None:
            return decided(answer, "guard: input passed")
        windows = Windows(self, _context(request))
        windows.feed(answer.text)
        windows.finish()
        if windows.cut is None:
            return decided(answer, f"guard: input passed; output passed in {windows.index} windows")
        text = self.refusal_text if self.on_block == "refuse" else windows.released_text
        return replace(answer, text=text, finish_reason="content_filter", tool_calls=(), decision=windows.why())

    def _stream(self, request: Request) -> Iterator[Chunk]:
        refused = self._screen_input(request)
        if refused is not None:
            yield Chunk(refused.text)
            yield Chunk("", refused.finish_reason, refused)
            return
        pieces = self.inner.stream(request, role="guarded")
        if self.output is None:
            yield from decided_stream(pieces, "guard: input passed")
            return
        windows = Windows(self, _context(request))
        last: Completion | None = None
        pending = ""  # passed text of the final chunk, sent with it
        try:
            for chunk in pieces:
                piece = windows.feed(chunk.text)
                if chunk.completion is not None:
                    last, pending = chunk.completion, piece
                    break
                if piece:
                    yield Chunk(piece)
                if windows.cut is not None:
                    break
        finally:
            # cut (or the consumer left): stop the inner model now, in this thread and context
            if last is None and (close := getattr(pieces, "close", None)) is not None:
                close()
        if windows.cut is None:
            if last is None:
                raise EngineError(f"{self.name}: the inner stream ended without a final chunk")
            pending += windows.finish()
        if windows.cut is None:
            assert last is not None
            yield Chunk(pending, last.finish_reason, decided(last, f"guard: output passed in {windows.index} windows"))
            return
        tail = pending + (self.refusal_text if self.on_block == "refuse" else "")
        text = windows.released_text + tail[len(pending) :]
        if last is not None:
            cut = replace(last, text=text, finish_reason="content_filter", tool_calls=(), decision=windows.why())
        else:  # the inner call was stopped before its end: its usage is unknown (its egress is in the ledger)
            why = f"{windows.why()}; the inner model was stopped (its usage is not known)"
            cut = Completion(text, "content_filter", Usage(), self.inner.name, decision=why)
        yield Chunk(tail, "content_filter", cut)

    # ---- screening ------------------------------------------------------------------------------------

    def _screen_input(self, request: Request) -> Completion | None:
        """None when the request may go on; the refusal when it is blocked in refuse mode; else raises."""
        if self.input is None:
            return None
        text = "\n\n".join(m.content for m in request.messages if m.role in SCREENED_ROLES and m.content)
        if not text:
            return None
        verdict = self.screen(self.input, text, "input", None, "request")
        if not verdict.unsafe:
            return None
        why = f"the input guard {verdict.guard!r} flagged the request ({describe(verdict)})"
        if self.on_block == "error":
            raise ContentFilteredError(f"{self.name}: {why}; nothing was sent. Rephrase the request.", verdict.category)
        return Completion(
            self.refusal_text, "content_filter", Usage(), self.name, decision=f"guard: {why}; refused, nothing sent"
        )

    def screen(self, guard: Guard, text: str, kind: Kind, context: str | None, where: str) -> Verdict:
        """One check, on the trace (guard, where, score, category, latency); a failing guard fails closed
        (`GuardError`) unless `fail` is "open", where it passes the text and the trace says so."""
        t0 = time.perf_counter()
        try:
            verdict = guard.check(text, kind=kind, context=context)
        except (RequestCancelledError, DeadlineExceededError):
            raise
        except ContextLengthError as err:  # the user's text is too long for the guard to read: refused, as a 400
            record(_event(guard.name, kind, time.perf_counter() - t0, f"{where}: too long", str(err)))
            raise ContextLengthError(
                f"{self.name}: the {kind} guard {guard.name!r} cannot read this much text ({err}); nothing was sent"
            ) from err
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            record(_event(guard.name, kind, time.perf_counter() - t0, f"{where}: failed", error))
            if self.fail == "open":
                return Verdict(False, 0.0, None, guard.name)
            held = "nothing was sent" if kind == "input" else "the rest of the answer was withheld"
            message = f"{self.name}: the {kind} guard {guard.name!r} failed ({error}); {held} (fail closed)"
            raise GuardError(message) from err
        state = f"unsafe {verdict.category or ''}".rstrip() if verdict.unsafe else "safe"
        record(_event(verdict.guard, kind, time.perf_counter() - t0, f"{where}: {state} (score {verdict.score:.3f})"))
        return verdict

    def close(self) -> None:
        for guard in (self.input, self.output):
            if guard is not None:
                guard.close()


class Windows:
    """The output screen of one answer: text in, text the output guard has passed out (see the module doc)."""

    def __init__(self, guarded: Guarded, context: str | None) -> None:
        self.guarded = guarded
        self.context = context
        self.text = ""
        self.start = 0  # where the next window begins
        self.checked = 0  # end of the last window screened
        self.released = 0
        self.index = 0  # windows screened
        self.cut: Verdict | None = None
        self.cut_at: tuple[int, int] | None = None

    @property
    def released_text(self) -> str:
        return self.text[: self.released]

    def feed(self, piece: str) -> str:
        """Take more of the answer; return what may now be released (nothing once cut)."""
        self.text += piece
        out = ""
        g = self.guarded
        while self.cut is None and len(self.text) - self.start >= g.window:
            out += self._screen(self.start + g.window, final=False)
        return out

    def finish(self) -> str:
        """The answer ended: screen what is left and release it (nothing once cut)."""
        if self.cut is not None:
            return ""
        if len(self.text) <= self.checked:  # only the held-back tail of a passed window is left
            piece, self.released = self.text[self.released :], len(self.text)
            return piece
        return self._screen(len(self.text), final=True)

    def _screen(self, end: int, *, final: bool) -> str:
        g = self.guarded
        assert g.output is not None
        span = (self.start, end)
        verdict = g.screen(g.output, self.text[self.start : end], "output", self.context, f"window {self.index} {span}")
        self.index += 1
        self.checked = end
        if verdict.unsafe:
            self.cut, self.cut_at = verdict, span
            return ""
        upto = end if final else end - g.overlap
        piece, self.released = self.text[self.released : upto], max(self.released, upto)
        self.start = end - g.overlap
        return piece

    def why(self) -> str:
        assert self.cut is not None and self.cut_at is not None
        a, b = self.cut_at
        return (
            f"guard: the output guard {self.cut.guard!r} flagged window {self.index - 1} (characters {a}-{b}; "
            f"{describe(self.cut)}); the answer was cut after {self.released} characters"
        )


def describe(verdict: Verdict) -> str:
    """ "category S9 (Indiscriminate Weapons), score 0.93" or "score 0.93" when the guard names no category."""
    name = hazards().get(verdict.category or "")
    category = f"category {verdict.category}" + (f" ({name})" if name else "") + ", " if verdict.category else ""
    return f"{category}score {verdict.score:.2f}"


def _context(request: Request) -> str | None:
    """The request an answer answers, for output guards: the last user message."""
    return next((m.content for m in reversed(request.messages) if m.role == "user"), None)


def _event(guard: str, kind: Kind, latency_s: float, decision: str, error: str | None = None) -> TraceEvent:
    return TraceEvent(
        model=guard, location="edge", operation="guard", role=f"guard-{kind}", usage=Usage(), latency_s=latency_s,
        cost_usd=0.0, decision=decision, error=error,
    )  # fmt: skip
