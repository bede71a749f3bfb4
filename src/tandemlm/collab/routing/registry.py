"""The routers a saved router file or a config can name: an explicit dict of name → class."""

from __future__ import annotations

from tandemlm.collab.routing.base import KnnRouter, LengthRouter, LogisticRouter, RandomRouter, Router
from tandemlm.collab.routing.draft import DraftSignalRouter
from tandemlm.collab.routing.neural import MatrixFactorizationRouter, MlpRouter
from tandemlm.errors import ModelNotFoundError

ROUTERS: dict[str, type[Router]] = {
    LengthRouter.name: LengthRouter,
    KnnRouter.name: KnnRouter,
    LogisticRouter.name: LogisticRouter,
    MatrixFactorizationRouter.name: MatrixFactorizationRouter,
    MlpRouter.name: MlpRouter,
    DraftSignalRouter.name: DraftSignalRouter,
    RandomRouter.name: RandomRouter,
}


def router_class(name: str) -> type[Router]:
    """The router class registered under `name`."""
    try:
        return ROUTERS[name]
    except KeyError:
        raise ModelNotFoundError(f"no router named {name!r}; known: {', '.join(ROUTERS)}") from None
