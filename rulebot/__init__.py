"""rulebot: rules for a read-it-later library, on every service former Pocket users moved to."""

__version__ = "0.1.0"
