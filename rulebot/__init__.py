"""rulebot: rules for a read-it-later library that speaks the Pocket v3 API."""

__version__ = "0.1.0"
