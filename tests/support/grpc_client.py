"""Tests read refusals exactly as a client would, through the public helper."""

from coresdk.client import error_reason

__all__ = ["error_reason"]
