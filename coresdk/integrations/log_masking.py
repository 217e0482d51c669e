"""A logging.Filter that masks PII and secrets in an application's own log records, in process, with the same
detectors as the sidecar's MaskingService (coresdk.masking), so logs are clean before any handler writes them.

    handler.addFilter(MaskingFilter())            # on the handler: a logger's filters skip propagated records
    install()                                     # or: on every handler of the root logger

The message is formatted and masked once (`args` dropped), and so are a traceback, a stack and string extras. The
exception object itself is dropped after its text is masked, so no handler can render its unmasked message. A
record that cannot be masked (too large, undecodable) is withheld rather than written as it is.
"""

from __future__ import annotations

import logging
from typing import Any

from coresdk.errors import CoreSDKError
from coresdk.masking.engine import Masker

WITHHELD = "[log message withheld: it could not be masked]"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_formatter = logging.Formatter()


class MaskingFilter(logging.Filter):
    def __init__(self, masker: Masker | None = None, policy: str = "", name: str = "") -> None:
        super().__init__(name)
        self._masker = masker or Masker(None)
        self._policy = policy

    def mask(self, text: str) -> str:
        try:
            return self._masker.mask_text(text, self._policy)[0]
        except CoreSDKError:
            return WITHHELD

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep what can be said, masked
            message = f"{record.msg} (unformattable arguments)"
        record.msg, record.args = self.mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _formatter.formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        extras: dict[str, Any] = {k: v for k, v in vars(record).items() if k not in _STANDARD and isinstance(v, str)}
        for key, value in extras.items():
            setattr(record, key, self.mask(value))
        return True


def install(masking: MaskingFilter | None = None, logger: logging.Logger | None = None) -> MaskingFilter:
    """Add the filter to every handler of `logger` (the root logger by default)."""
    masking = masking or MaskingFilter()
    for handler in (logger or logging.getLogger()).handlers:
        if masking not in handler.filters:
            handler.addFilter(masking)
    return masking
