"""`PiiGatekeeper`: a `LanguageModel` that keeps PII off the cloud around any inner model or strategy.

Every message of a request, and every stop sequence, is screened by the detectors; the policy decides:
block (refuse), route_local (the edge model answers alone), or send to the inner model with the PII replaced
by stand-ins, which are restored in the answer (streams included). A stop sequence is masked like the
messages, so the cloud stops at its stand-in; the restored answer is cut at the original stop sequences too.
A detector that raises stops the request before anything is sent (fail closed). Modes: `pseudonymize`
sends the masked conversation; `disclosure` sends only the edge model's minimal rewrite of it; `guardian`
sends only an abstract sub-question and lets the edge compose the final answer. A rewrite must keep the
request's non-personal facts (every number that is not PII, and the question: privacy/facts.py); one that
drops some is asked for once more, naming them, and if the retry drops some too, that request is sent as
`pseudonymize` instead (a `privacy-fallback` trace event says so; the egress is still masked). Guardian's
composed answer must keep the expert's result (its final number): retried once, then the expert's own answer
(restored) is the answer; a guardian stream is therefore sent once the composed answer has been checked.
Both rewrite a chat, so a
raw text completion in those modes is a `ValidationError`, not a quiet fall back to `pseudonymize`. The
edge model sees unmasked text, so it (and every model inside it) must be edge-located. The decision, and
why, is the completion's `decision` and this call's trace event.

Conversations: stand-ins stay the same across the turns of one conversation. A conversation is keyed by
its messages: after each answer the mapping is stored under a hash of the request's messages and under a
hash of those messages plus the answer; a later request continues the mapping stored under its longest
such prefix (copied, so two branches of a conversation do not renumber each other). The store holds the
most recent `max_conversations`, in memory on the edge only.

Tools and structured output: tool results are messages, screened like any; the arguments of earlier tool
calls are screened and masked too, and the arguments of the calls in the answer are restored (as JSON: a
restored value is escaped into its string), as is a response_format answer. The free text of tool
definitions and of the response_format schema (descriptions, titles, enum / const / default / example
values) is screened and masked the same way: a schema's `"enum": ["Ann Lee", ...]` leaves as stand-ins,
and the answer's stand-ins come back as the values. Only `pseudonymize` carries tools (the other modes
rewrite the conversation); logprobs are refused, since they would be the masked text's tokens.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tandemlm.collab.base import Strategy
from tandemlm.errors import EngineError, PrivacyBlockedError, PrivacyError, ValidationError
from tandemlm.models.base import LanguageModel, StopScanner, apply_stop
from tandemlm.privacy.boundary import require_edge
from tandemlm.privacy.detectors import Detector, PatternDetector, UnionDetector
from tandemlm.privacy.disclosure import SelectiveDisclosure
from tandemlm.privacy.facts import FALLBACK_ROLE, RETRY_ROLE, Facts, facts_of, final_number, numbers_in
from tandemlm.privacy.guardian import Guardian
from tandemlm.privacy.policy import Decision, PrivacyPolicy, describe
from tandemlm.privacy.pseudonymize import Pseudonymizer
from tandemlm.privacy.spans import Span
from tandemlm.trace import record
from tandemlm.types import Chunk, Completion, GenerationParams, Message, Request, ToolCall, TraceEvent, Usage

Mode = Literal["pseudonymize", "disclosure", "guardian"]
MODES: tuple[str, ...] = ("pseudonymize", "disclosure", "guardian")


@dataclass(frozen=True)
class _Screened:
    """A screened request: the decision, the conversation's pseudonymizer, each message's spans and each
    stop sequence's spans."""

    decision: Decision
    pseudonymizer: Pseudonymizer
    spans: tuple[tuple[Span, ...], ...]
    stop_spans: tuple[tuple[Span, ...], ...] = ()
    call_spans: tuple[tuple[tuple[Span, ...], ...], ...] = ()  # per message, per tool call: its arguments' spans
    definition_spans: dict[str, tuple[Span, ...]] = field(default_factory=dict)  # schema / tool text → its spans


class PiiGatekeeper(Strategy):
    """Screens, masks and restores around `inner`; `edge` answers locally, rewrites (disclosure, guardian)."""

    carries = frozenset({"response_format", "tools"})
    not_carried = "the cloud writes the masked text's tokens, so their logprobs are not those of the restored answer"

    def __init__(
        self,
        inner: LanguageModel,
        *,
        edge: LanguageModel | None = None,
        detectors: Detector | Sequence[Detector] | None = None,
        policy: PrivacyPolicy | None = None,
        mode: Mode = "pseudonymize",
        surrogates: bool = False,
        name: str | None = None,
        max_conversations: int = 256,
    ) -> None:
        # the edge may answer too (route_local, rewrites), so its limit counts as well; the context is the inner's
        children = (inner,) if edge is None else (inner, edge)
        super().__init__(name or f"privacy({inner.name})", children, context_from=(inner,))
        self.inner, self.edge = inner, edge
        self.detector = (
            detectors if isinstance(detectors, Detector) else UnionDetector(detectors or [PatternDetector()])
        )
        self.policy = policy or PrivacyPolicy()
        if mode not in MODES:
            raise ValidationError(f"privacy mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode: Mode = mode
        if edge is None and (mode != "pseudonymize" or self.policy.needs_edge):
            raise ValidationError(
                f"privacy mode {mode!r} with fail={self.policy.fail!r} and these policies needs an edge model"
            )
        if edge is not None:
            why = "the gatekeeper hands it unmasked text (local answers, rewrites, the slm detector)"
            require_edge(edge, f"{self.name}: edge", why)
        self.surrogates = surrogates
        self.conversations = Conversations(max_conversations)

    # ---- answering ------------------------------------------------------------------------------------

    def _generate(self, request: Request) -> Completion:
        screened = self._screen(request)
        if screened.decision.route == "local":
            return self._finish(request, self._local().generate(request, role="local"), screened, None)
        outgoing, mode, note = self._outgoing(request, screened)
        sent_back = self.inner.generate(outgoing, role="cloud")
        answer = _restored(sent_back, screened.pseudonymizer, request)
        if mode == "guardian":
            answer, note = self._compose(request, answer, final_number(sent_back.text))
        return self._finish(request, answer, screened, outgoing, note)

    def _stream(self, request: Request) -> Iterator[Chunk]:
        screened = self._screen(request)
        if screened.decision.route == "local":
            yield from self._relay(request, self._local().stream(request, role="local"), screened, None)
            return
        outgoing, mode, note = self._outgoing(request, screened)
        if mode == "guardian":  # the composed answer is checked whole before any of it is passed on
            sent_back = self.inner.generate(outgoing, role="cloud")
            plan = _restored(sent_back, screened.pseudonymizer, request)
            answer, note = self._compose(request, plan, final_number(sent_back.text))
            whole = iter([Chunk(answer.text, answer.finish_reason, answer)])
            yield from self._relay(request, whole, screened, outgoing, note)
            return
        yield from self._relay(request, self.inner.stream(outgoing, role="cloud"), screened, outgoing, note)

    def _relay(
        self, request: Request, pieces: Iterator[Chunk], screened: _Screened, outgoing: Request | None, note: str = ""
    ) -> Iterator[Chunk]:
        """Pass a stream through, restoring stand-ins (a stand-in split across chunks is held back whole) and
        cutting at the original stop sequences (a tail that may begin one is held back, as `_finish` cuts).
        The inner stream is read to its end before the last chunk is passed on, so it closes its trace in
        the thread and context that opened it even when the consumer stops at the last chunk."""
        in_json = request.params.response_format is not None
        restorer, scanner = screened.pseudonymizer.restorer(in_json=in_json), StopScanner(request.params.stop)
        restored, stopped = "", False
        last: Chunk | None = None
        for chunk in pieces:
            if chunk.completion is not None:
                last = chunk
            elif not stopped:
                restored += restorer.feed(chunk.text)
                piece, stopped = scanner.update(restored)
                if piece:
                    yield Chunk(piece)
        if last is None or last.completion is None:
            raise EngineError(f"{self.name}: the inner stream ended without a final chunk")
        tail = ""
        if not stopped:
            restored += restorer.feed(last.text) + restorer.flush()
            tail = scanner.update(restored)[0] + scanner.rest()
        restored_answer = _restored(last.completion, screened.pseudonymizer, request)
        answer = self._finish(request, restored_answer, screened, outgoing, note)
        yield Chunk(tail, answer.finish_reason, answer)

    def _finish(
        self, request: Request, answer: Completion, screened: _Screened, outgoing: Request | None, note: str = ""
    ) -> Completion:
        """The answer cut at the request's own stop sequences (the cloud stopped at their stand-ins, and a
        restored value may hold one), remembered for the conversation and stamped with the decision (and
        `note`: a fall back, if there was one)."""
        text, cut = apply_stop(answer.text, request.params.stop)
        answer = replace(answer, text=text, finish_reason="stop" if cut else answer.finish_reason)
        self.conversations.remember(request.messages, answer.text, screened.pseudonymizer)
        where = "answered on the device" if outgoing is None and screened.decision.route == "local" else "sent to cloud"
        note = f"; {note}" if note else ""
        return replace(answer, decision=f"{self.mode}: {screened.decision.reason}; {where}{note}")

    # ---- screening ------------------------------------------------------------------------------------

    def _screen(self, request: Request) -> _Screened:
        """Detect PII in every message and stop sequence and decide; fail closed when a detector raises."""
        if request.raw and self.mode != "pseudonymize":
            raise ValidationError(
                f"{self.name}: privacy mode {self.mode!r} rewrites a chat conversation and cannot serve a raw text "
                "completion (/v1/completions); send this request to /v1/chat/completions instead"
            )
        if "tools" in request.features and self.mode != "pseudonymize":
            raise ValidationError(
                f"{self.name}: privacy mode {self.mode!r} rewrites the conversation and cannot carry tools or tool "
                "calls; use privacy mode pseudonymize for this request"
            )
        pseudonymizer = self.conversations.lookup(request.messages, self.surrogates)
        try:
            spans = tuple(tuple(self.detector.detect(m.content)) for m in request.messages)
            stop_spans = tuple(tuple(self.detector.detect(stop)) for stop in request.params.stop)
            call_spans = tuple(
                tuple(tuple(self.detector.detect(c.arguments)) for c in m.tool_calls) for m in request.messages
            )
            definition_spans = {text: tuple(self.detector.detect(text)) for text in _definition_texts(request.params)}
        except Exception as err:
            return _Screened(self._detector_failed(err), pseudonymizer, ())
        args = [*(found for message in call_spans for found in message), *definition_spans.values()]
        decision = self.policy.decide(s for found in (*spans, *stop_spans, *args) for s in found)
        if decision.route == "block":
            found = describe(decision_spans((*spans, *stop_spans, *args), self.policy))
            raise PrivacyBlockedError(
                f"{self.name}: the privacy policy blocks requests holding {found}; "
                "nothing was sent. Remove that information and try again."
            )
        return _Screened(decision, pseudonymizer, spans, stop_spans, call_spans, definition_spans)

    def _detector_failed(self, err: Exception) -> Decision:
        why = f"PII detector failed ({type(err).__name__}: {err})"
        if self.policy.fail == "local":
            return Decision("local", (), f"route_local: {why}")
        raise PrivacyError(f"{self.name}: {why}; nothing was sent to the cloud (privacy fail: closed)") from err

    def _outgoing(self, request: Request, screened: _Screened) -> tuple[Request, Mode, str]:
        """What the inner model gets: the masked conversation, or (disclosure, guardian) the masked rewrite;
        either way with the stop sequences masked too (the free text of a request that leaves besides the
        messages; `user` and the like never reach a model). Also the mode this request is served in (a
        rewrite that drops facts falls back to pseudonymize) and the note saying so."""
        p = screened.pseudonymizer
        masked = [
            p.mask(m.content, [s for s in spans if self.policy.span_action(s) == "pseudonymize"])
            for m, spans in zip(request.messages, screened.spans, strict=True)
        ]
        stops = [
            p.mask(stop, [s for s in spans if self.policy.span_action(s) == "pseudonymize"])
            for stop, spans in zip(request.params.stop, screened.stop_spans, strict=True)
        ]
        params: GenerationParams = replace(request.params, stop=tuple(p.mask_known(stop) for stop in stops))
        params = self._masked_definitions(params, screened)
        note = ""
        if self.mode != "pseudonymize":
            rewrite, note = self._checked_rewrite(request, screened)
            if rewrite is not None:
                return replace(rewrite, params=params), self.mode, ""
        messages = tuple(
            replace(m, content=p.mask_known(text), tool_calls=self._masked_calls(m, calls, p))
            for m, text, calls in zip(request.messages, masked, screened.call_spans, strict=True)
        )
        return replace(request, messages=messages, params=params), "pseudonymize", note

    def _checked_rewrite(self, request: Request, screened: _Screened) -> tuple[Request | None, str]:
        """The edge's rewrite (disclosure) or abstraction (guardian), screened again, if it keeps the request's
        facts on the first try or on a retry told what it dropped; else None and why (a fall back)."""
        assert self.edge is not None
        rewriter = Guardian(self.edge).abstract if self.mode == "guardian" else SelectiveDisclosure(self.edge).rewrite
        facts, missing, p = self._facts(request, screened), list[str](), screened.pseudonymizer
        for attempt in range(2):
            rewrite = rewriter(request, missing)
            texts = [m.content for m in rewrite.messages]
            if texts:  # the request's own PII-free instructions go with the rewrite whether the edge kept them
                texts[-1] = facts.completed(texts[-1])
            messages = tuple(
                Message(m.role, self._rescreen(t, p)) for m, t in zip(rewrite.messages, texts, strict=True)
            )
            missing = facts.missing("\n".join(m.content for m in messages))
            if not missing:
                return replace(rewrite, messages=messages), ""
            if attempt == 0:
                self._event(RETRY_ROLE, f"{self.mode}: the rewrite dropped {_count(missing)}; asked again")
        note = f"fell back to pseudonymize: the rewrite dropped {_count(missing)} after a retry"
        self._event(FALLBACK_ROLE, f"{self.mode}: {note}")
        return None, note

    def _compose(self, request: Request, plan: Completion, result: str | None) -> tuple[Completion, str]:
        """Guardian's composed answer, if it keeps the expert's `result` (the final number of the cloud's
        answer as it came back, so never a digit of a restored PII value) on the first try or a retry; else
        `plan` (the cloud's answer, restored) itself and the note saying so."""
        assert self.edge is not None
        guardian, missing = Guardian(self.edge), list[str]()
        for attempt in range(2):
            composed = self.edge.generate(guardian.composition(request, plan.text, missing), role="guardian-compose")
            if result is None or result in numbers_in(composed.text):
                return composed, ""
            missing = [f"the expert's result, {result}"]
            if attempt == 0:
                self._event(RETRY_ROLE, "guardian: the composed answer dropped the expert's result; asked again")
        note = "fell back to the expert's answer: the composed answer dropped the expert's result after a retry"
        self._event(FALLBACK_ROLE, f"guardian: {note}")
        return plan, note

    def _facts(self, request: Request, screened: _Screened) -> Facts:
        """The facts a rewrite must keep: those of the last user message (the task), its PII aside."""
        for message, spans in zip(reversed(request.messages), reversed(screened.spans), strict=True):
            if message.role == "user":
                return facts_of(message.content, spans)
        return Facts((), "", ())

    def _event(self, role: str, decision: str) -> None:
        """A trace event of this gatekeeper's own (no model call): a retried rewrite or a fall back."""
        record(TraceEvent(self.name, "edge", "privacy", role, Usage(), 0.0, 0.0, decision=decision))

    def _masked_definitions(self, params: GenerationParams, screened: _Screened) -> GenerationParams:
        """The tools and the response_format with the PII in their free text masked."""
        p = screened.pseudonymizer

        def mask(text: str) -> str:
            found = screened.definition_spans.get(text, ())
            return p.mask_known(p.mask(text, [s for s in found if self.policy.span_action(s) == "pseudonymize"]))

        tools = tuple(
            replace(t, description=mask(t.description), parameters=json.dumps(_schema_text(t.schema, mask)))
            for t in params.tools
        )
        rf = params.response_format
        if rf is not None and rf.schema_dict is not None:
            rf = replace(rf, schema=json.dumps(_schema_text(rf.schema_dict, mask)))
        return replace(params, tools=tools, response_format=rf)

    def _masked_calls(
        self, message: Message, spans: tuple[tuple[Span, ...], ...], p: Pseudonymizer
    ) -> tuple[ToolCall, ...]:
        """An earlier turn's tool calls with the PII in their arguments masked (stand-ins sit in JSON strings)."""
        return tuple(
            replace(
                c,
                arguments=p.mask_known(
                    p.mask(c.arguments, [s for s in found if self.policy.span_action(s) == "pseudonymize"])
                ),
            )
            for c, found in zip(message.tool_calls, spans, strict=True)
        )

    def _rescreen(self, text: str, p: Pseudonymizer) -> str:
        """Mask whatever the edge model's rewrite still holds: detected spans (all but allowed types) and
        values already known from the original request."""
        try:
            spans = self.detector.detect(text)
        except Exception as err:
            raise PrivacyError(
                f"{self.name}: PII detector failed on the rewritten request ({err}); nothing was sent"
            ) from err
        return p.mask_known(p.mask(text, [s for s in spans if self.policy.span_action(s) != "allow"]))

    def _local(self) -> LanguageModel:
        if self.edge is None:  # __init__ requires an edge model whenever a policy can route locally
            raise PrivacyError(f"{self.name}: the request must stay on the device but no edge model is configured")
        return self.edge


def _count(missing: Sequence[str]) -> str:
    """What a rewrite dropped, counted (the trace names no values): `2 numbers, the question and 1 instruction`."""
    numbers = sum(m.startswith("the number ") for m in missing)
    instructions = sum(m.startswith("the instruction ") for m in missing)
    parts = [f"{numbers} number{'s' if numbers != 1 else ''}"] if numbers else []
    parts += ["the question"] if any(m.startswith("the question ") for m in missing) else []
    parts += [f"{instructions} instruction{'s' if instructions != 1 else ''}"] if instructions else []
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)


def _restored(answer: Completion, p: Pseudonymizer, request: Request) -> Completion:
    """The inner answer with the originals back in its text and in its tool calls' arguments (JSON-escaped)."""
    calls = tuple(replace(c, arguments=p.restore(c.arguments, in_json=True)) for c in answer.tool_calls)
    text = p.restore(answer.text, in_json=request.params.response_format is not None)
    return replace(answer, text=text, tool_calls=calls)


_FREE_TEXT = ("description", "title", "const", "default")  # a schema's keys whose string value is free text
_FREE_TEXTS = ("enum", "examples")  # and those whose strings in a list are


def _schema_text(node: Any, mask: Callable[[str], str]) -> Any:
    """A JSON Schema with `mask` applied to its free text (not to keywords, property names or types)."""
    if isinstance(node, list):
        return [_schema_text(item, mask) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _FREE_TEXT and isinstance(value, str):
            out[key] = mask(value)
        elif key in _FREE_TEXTS and isinstance(value, list):
            out[key] = [mask(v) if isinstance(v, str) else v for v in value]
        else:
            out[key] = _schema_text(value, mask)
    return out


def _definition_texts(params: GenerationParams) -> list[str]:
    """The free text that leaves with a request besides its messages: in tool definitions and the output schema."""
    texts: list[str] = []

    def keep(text: str) -> str:
        texts.append(text)
        return text

    for tool in params.tools:
        keep(tool.description)
        _schema_text(tool.schema, keep)
    if params.response_format is not None and params.response_format.schema_dict is not None:
        _schema_text(params.response_format.schema_dict, keep)
    return list(dict.fromkeys(t for t in texts if t))


def decision_spans(spans: Sequence[Sequence[Span]], policy: PrivacyPolicy) -> list[Span]:
    """The spans whose entity type the policy blocks."""
    return [s for message in spans for s in message if policy.span_action(s) == "block"]


class Conversations:
    """Pseudonymizers by conversation, keyed by hashes of message prefixes (see the module docstring)."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._store: OrderedDict[str, Pseudonymizer] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, messages: Sequence[Message], surrogates: bool) -> Pseudonymizer:
        """A copy of the mapping of the longest known prefix of `messages`, or a fresh one."""
        keys = prefix_keys(messages)
        with self._lock:
            for key in reversed(keys):
                if key in self._store:
                    self._store.move_to_end(key)
                    return self._store[key].copy()
        return Pseudonymizer(surrogates=surrogates)

    def remember(self, messages: Sequence[Message], answer: str, pseudonymizer: Pseudonymizer) -> None:
        if not pseudonymizer.originals:
            return
        keys = prefix_keys([*messages, Message("assistant", answer)])
        with self._lock:
            for key in keys[-2:]:
                self._store[key] = pseudonymizer
                self._store.move_to_end(key)
            while len(self._store) > self.limit:
                self._store.popitem(last=False)

    def __len__(self) -> int:
        return len(self._store)


def prefix_keys(messages: Sequence[Message]) -> list[str]:
    """One hash per prefix: keys[i] covers messages[: i + 1]."""
    keys, digest = [], hashlib.sha256()
    for m in messages:
        digest.update(f"{m.role}\0{len(m.content)}\0{m.content}\0".encode())
        keys.append(digest.copy().hexdigest())
    return keys
