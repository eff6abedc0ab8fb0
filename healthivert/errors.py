"""Errors a user can act on.

Library code raises :class:`InputError` (a ``ValueError``) for bad input; the CLI turns it
into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input (file, image, mask, centroids); the message is one line a user can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
