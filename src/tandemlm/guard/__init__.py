"""Guards on input and output, and fact verification by the edge model (issue 12)."""

from tandemlm.guard import cascade, classifier, judge, scripted  # noqa: F401  # the packaged guard types register
from tandemlm.guard.base import GUARDS, Guard, Kind, Verdict, guard_factory, register

__all__ = ["GUARDS", "Guard", "Kind", "Verdict", "guard_factory", "register"]
