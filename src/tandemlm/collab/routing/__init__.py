"""Query-level routing (RouteLLM, RouterBench): score a prompt, send it to the edge or the cloud.

Importing this package needs only numpy; MiniLM's `tokenizers`/`safetensors` (the `router` extra) load
when an embedding router first embeds.
"""

from tandemlm.collab.routing.base import (
    ROUTERS,
    KnnRouter,
    LengthRouter,
    LogisticRouter,
    RandomRouter,
    Router,
    cheap_features,
    router_class,
    threshold_for_share,
)
from tandemlm.collab.routing.embeddings import Embedder, HashEmbedder, MiniLM, fetch_minilm
from tandemlm.collab.routing.routed import QueryRouter, RouteDecision

__all__ = [
    "ROUTERS",
    "Embedder",
    "HashEmbedder",
    "KnnRouter",
    "LengthRouter",
    "LogisticRouter",
    "MiniLM",
    "QueryRouter",
    "RandomRouter",
    "RouteDecision",
    "Router",
    "cheap_features",
    "fetch_minilm",
    "router_class",
    "threshold_for_share",
]
