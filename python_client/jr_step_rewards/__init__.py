"""Step-level ledger for the Jr task executor."""

__version__ = "0.1.0"
