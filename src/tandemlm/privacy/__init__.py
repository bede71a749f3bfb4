"""Cloud–edge privacy: PII detectors, pseudonymizer with restore, policies, selective disclosure, guardian
mode, the `PiiGatekeeper` model wrapper, and the egress audit. Presidio and spaCy load only when used."""

from tandemlm.privacy.detectors import (
    DETECTORS,
    Detector,
    PatternDetector,
    PresidioDetector,
    SlmDetector,
    UnionDetector,
    build_detectors,
)
from tandemlm.privacy.gatekeeper import PiiGatekeeper
from tandemlm.privacy.policy import PrivacyPolicy
from tandemlm.privacy.pseudonymize import Pseudonymizer, StreamRestorer
from tandemlm.privacy.spans import Span, union

__all__ = [
    "DETECTORS",
    "Detector",
    "PatternDetector",
    "PiiGatekeeper",
    "PresidioDetector",
    "PrivacyPolicy",
    "Pseudonymizer",
    "SlmDetector",
    "Span",
    "StreamRestorer",
    "UnionDetector",
    "build_detectors",
    "union",
]
