"""Errors a user can cause: one line saying what is wrong, and a hint saying how to fix it."""


class P3MError(Exception):
    """Base of every user-facing error; the CLI prints `message` (and `hint`) without a traceback."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
