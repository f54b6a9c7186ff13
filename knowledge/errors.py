"""Errors a user can act on: the CLI prints them as one line, never a traceback."""


class CulpritError(Exception):
    """A failure with a message that says what went wrong and how to fix it."""


class InputError(CulpritError):
    """A file, line or argument the user gave cannot be used."""
