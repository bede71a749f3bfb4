"""The privacy boundary as a rule: a model that may be handed unmasked text must run on the device, and so
must every model it is built from (a strategy located `edge` can still hold a cloud model).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from tandemlm.errors import ValidationError
from tandemlm.models.base import LanguageModel


def models_in(model: LanguageModel) -> Iterator[LanguageModel]:
    """`model` and every model it is built from, each once: the `children` a strategy lists, and any model
    held in its attributes directly or in a list, tuple or dict (`Cascade.small`/`.large`,
    `Fallback.primary`/`.backup`, a gatekeeper's `inner`/`edge`, ...)."""
    seen: set[int] = set()
    todo = [model]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        children = getattr(current, "children", ())
        held = [*(children() if callable(children) else children), *getattr(current, "__dict__", {}).values()]
        for value in held:
            if isinstance(value, Mapping):
                value = list(value.values())
            items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
            todo += [item for item in items if isinstance(item, LanguageModel)]


def require_edge(model: LanguageModel, who: str, why: str) -> None:
    """Raise `ValidationError` unless `model` and every model inside it has location "edge". `who` names the
    holder for the message, `why` says what unmasked text the model would be handed."""
    for inner in models_in(model):
        if inner.location == "edge":
            continue
        held = f"{inner.name!r} is" if inner is model else f"{model.name!r} holds {inner.name!r}, which is"
        raise ValidationError(
            f"{who}: {held} located in the cloud; {why}, so it must run on the device. "
            "Use an edge-located model (location: edge) there."
        )
