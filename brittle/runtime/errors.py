"""The one exception type that carries a user-facing message (printed as one line, no traceback)."""


class BrittleError(Exception):
    """Bad input or inconsistent state that the user can fix; the message names value and remedy."""
