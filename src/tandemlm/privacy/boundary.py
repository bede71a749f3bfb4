"""The privacy boundary as a rule: a model that may be handed unmasked text must run on the device, and so
must every model it is built from (a strategy located `edge` can still hold a cloud model).
"""

from __future__ import annotations

from tandemlm.collab.base import leaves
from tandemlm.errors import ValidationError
from tandemlm.models.base import LanguageModel


def require_edge(model: LanguageModel, who: str, why: str) -> None:
    """Raise `ValidationError` unless `model` and every model inside it has location "edge". `who` names the
    holder for the message, `why` says what unmasked text the model would be handed."""
    for inner in leaves(model):  # a strategy runs on the device; what it is built from may not
        if inner.location == "edge":
            continue
        held = f"{inner.name!r} is" if inner is model else f"{model.name!r} holds {inner.name!r}, which is"
        raise ValidationError(
            f"{who}: {held} located in the cloud; {why}, so it must run on the device. "
            "Use an edge-located model (location: edge) there."
        )
