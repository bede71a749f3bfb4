"""What a pipeline does with the PII it finds, per entity type.

Actions: `pseudonymize` (replace with stand-ins, send, restore the answer; the default), `route_local` (the
edge model answers alone and nothing leaves the device), `block` (refuse with `PrivacyBlockedError`),
`allow` (send as written). `ID_NUMBER` (an ID-like value found only by the cue word before it) has its own
knob, `unknown_identifier`: unset, it is pseudonymized, or takes `default` where that is stricter; naming
`ID_NUMBER` in `entities` overrides both. When spans call for different actions the strictest wins:
block > route_local > pseudonymize > allow; so does it among the types of one span that merged overlapping
findings. `fail` says what happens when a detector raises: `closed` refuses (`PrivacyError`), `local` lets
the edge model answer; either way nothing goes to the cloud.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from tandemlm.errors import ValidationError
from tandemlm.privacy.spans import Span

Action = Literal["pseudonymize", "route_local", "block", "allow"]
Route = Literal["cloud", "local", "block"]
FailMode = Literal["closed", "local"]
ACTIONS: tuple[str, ...] = ("allow", "pseudonymize", "route_local", "block")  # from least to most strict
UNKNOWN_IDENTIFIER = "ID_NUMBER"  # the entity type `unknown_identifier` acts on


@dataclass(frozen=True)
class Decision:
    """Where a request goes, which spans to mask on the way, and why (for the trace; never the values)."""

    route: Route
    mask: tuple[Span, ...]
    reason: str


@dataclass(frozen=True)
class PrivacyPolicy:
    """The action for each entity type (`entities`), `default` for the rest, `unknown_identifier` for
    `ID_NUMBER` spans (see the module docstring), and the failure mode."""

    default: Action = "pseudonymize"
    entities: Mapping[str, Action] = field(default_factory=dict)
    fail: FailMode = "closed"
    unknown_identifier: Action | None = None

    def __post_init__(self) -> None:
        knobs = [("default", self.default), *self.entities.items()]
        if self.unknown_identifier is not None:
            knobs.append(("unknown_identifier", self.unknown_identifier))
        for where, action in knobs:
            if action not in ACTIONS:
                raise ValidationError(f"privacy policy {where}: {action!r} is not one of {', '.join(ACTIONS)}")
        if self.fail not in ("closed", "local"):
            raise ValidationError(f"privacy policy fail must be 'closed' or 'local', got {self.fail!r}")

    def action(self, entity: str) -> Action:
        if entity in self.entities:
            return self.entities[entity]
        if entity == UNKNOWN_IDENTIFIER:
            if self.unknown_identifier is not None:
                return self.unknown_identifier
            return "pseudonymize" if self.default == "allow" else self.default
        return self.default

    def span_action(self, span: Span) -> Action:
        """The strictest action of the types a span stands for (`union` merges overlapping spans)."""
        return max((self.action(e) for e in span.entities), key=ACTIONS.index)

    @property
    def needs_edge(self) -> bool:
        """Whether some outcome of this policy is an answer by the edge model."""
        return self.fail == "local" or "route_local" in (self.default, self.unknown_identifier, *self.entities.values())

    def decide(self, spans: Iterable[Span]) -> Decision:
        """The route for a request whose messages hold these spans."""
        spans = tuple(spans)
        if not spans:
            return Decision("cloud", (), "no PII found")
        by_action: dict[str, list[Span]] = {}
        for span in spans:
            by_action.setdefault(self.span_action(span), []).append(span)
        strictest = max(by_action, key=ACTIONS.index)
        found = describe(by_action[strictest])
        if strictest == "block":
            return Decision("block", (), f"blocked: {found}")
        if strictest == "route_local":
            return Decision("local", (), f"route_local: {found} stays on the device")
        masked = tuple(by_action.get("pseudonymize", ()))
        allowed = by_action.get("allow", [])
        reason = f"pseudonymized {describe(masked)}" if masked else "PII allowed"
        return Decision("cloud", masked, reason + (f"; allowed {describe(allowed)}" if allowed and masked else ""))


def describe(spans: Iterable[Span]) -> str:
    """Entity types with counts, e.g. `2 PERSON, 1 EMAIL` (never the values)."""
    counts = Counter(s.entity for s in spans)
    return ", ".join(f"{n} {entity}" for entity, n in sorted(counts.items(), key=lambda p: (-p[1], p[0])))
