"""Query-level routing (RouteLLM, RouterBench): score a prompt, send it to the edge or the cloud.

Importing this package needs only numpy; MiniLM's `tokenizers`/`safetensors` (the `router` extra) load
when an embedding router first embeds.
"""

from tandemlm.collab.routing.base import (
    KnnRouter,
    LengthRouter,
    LogisticRouter,
    RandomRouter,
    Router,
    cheap_features,
    threshold_for_share,
)
from tandemlm.collab.routing.draft import DraftSignalRouter
from tandemlm.collab.routing.embeddings import Embedder, HashEmbedder, MiniLM, fetch_minilm
from tandemlm.collab.routing.neural import MatrixFactorizationRouter, MlpRouter
from tandemlm.collab.routing.registry import ROUTERS, router_class
from tandemlm.collab.routing.routed import QueryRouter, RouteDecision
from tandemlm.collab.routing.static import StaticMiniLM

__all__ = [
    "ROUTERS",
    "DraftSignalRouter",
    "Embedder",
    "HashEmbedder",
    "KnnRouter",
    "LengthRouter",
    "LogisticRouter",
    "MatrixFactorizationRouter",
    "MiniLM",
    "MlpRouter",
    "QueryRouter",
    "RandomRouter",
    "RouteDecision",
    "Router",
    "StaticMiniLM",
    "cheap_features",
    "fetch_minilm",
    "router_class",
    "threshold_for_share",
]
