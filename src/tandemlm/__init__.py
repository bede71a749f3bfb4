"""tandemlm: a small edge model and a large cloud model working as one.

The core is light: importing it loads neither llama.cpp, torch nor an HTTP server.
"""

from tandemlm.config import Runtime, load_config
from tandemlm.errors import TandemError
from tandemlm.models import ENGINES, LanguageModel, ScriptedModel
from tandemlm.trace import Recorder
from tandemlm.types import (
    Chunk,
    Completion,
    GenerationParams,
    LogProbs,
    Message,
    Price,
    Request,
    TraceEvent,
    Usage,
)

__all__ = [
    "ENGINES",
    "Chunk",
    "Completion",
    "GenerationParams",
    "LanguageModel",
    "LogProbs",
    "Message",
    "Price",
    "Recorder",
    "Request",
    "Runtime",
    "ScriptedModel",
    "TandemError",
    "TraceEvent",
    "Usage",
    "load_config",
]
