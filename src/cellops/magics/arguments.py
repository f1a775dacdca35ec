"""What the magics of every area share about their arguments."""

from __future__ import annotations

__all__ = ["unquote"]


def unquote(text: str | None) -> str | None:
    """IPython's argument parser keeps quotes: ``%register "first try"`` arrives with them."""
    if text and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text
