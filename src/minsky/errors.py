"""Errors that reach the user as one clear line instead of a traceback."""


class MinskyError(Exception):
    """A problem the user can fix: bad input, a missing model, an unreachable server."""
