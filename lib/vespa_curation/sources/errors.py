"""Errors raised by sources."""


class SourceError(RuntimeError):
    """A source cannot be opened or read; the message names it (never its credentials)."""
