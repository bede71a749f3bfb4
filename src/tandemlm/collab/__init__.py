"""Collaboration strategies: each is a LanguageModel built from LanguageModels, so they nest."""

from tandemlm.collab.fallback import Fallback

__all__ = ["Fallback"]
