"""The masking log filter, through real logging handlers: PII and tokens are gone from every part of a record a
handler can write (message, arguments, traceback, stack, extras), and nothing it meets makes logging fail."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coresdk.integrations.log_masking import WITHHELD, MaskingFilter, install
from tests.support.tokens import SigningKey, claims

KEY = SigningKey.ec("log-1")
VALUES = {
    "email": "jane.doe@example.com",
    "card": "4111 1111 1111 1111",
    "token": KEY.sign(claims()),
}
CARRIERS = ["message", "argument", "exception", "stack", "extra"]


class JsonFormatter(logging.Formatter):
    """A structured formatter that writes every extra attribute, as JSON log shippers do."""

    def format(self, record: logging.LogRecord) -> str:
        super().format(record)
        return json.dumps({k: str(v) for k, v in vars(record).items()})


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO]]:
    logger = logging.getLogger("sdk-log-test")
    logger.propagate = False
    text, structured = io.StringIO(), io.StringIO()
    masking = MaskingFilter()
    for stream, formatter in ((text, logging.Formatter("%(levelname)s %(message)s")), (structured, JsonFormatter())):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.addFilter(masking)
        logger.addHandler(handler)
    yield logger, text, structured
    logger.handlers.clear()


def emit(logger: logging.Logger, carrier: str, value: str) -> None:
    if carrier == "message":
        logger.warning(f"order placed by {value}")
    elif carrier == "argument":
        logger.warning("order placed by %s", value)
    elif carrier == "exception":
        try:
            raise ValueError(f"cannot charge {value}")
        except ValueError:
            logger.exception("charge failed")
    elif carrier == "stack":
        record = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "checkout", None, None)
        record.stack_info = f'Stack (most recent call last):\n  File "shop.py", line 9\n    charge("{value}")'
        logger.handle(record)
    else:
        logger.warning("order placed", extra={"customer": value})


@pytest.mark.parametrize("kind", sorted(VALUES))
@pytest.mark.parametrize("carrier", CARRIERS)
def test_no_pii_or_token_reaches_any_handler(
    captured: tuple[logging.Logger, io.StringIO, io.StringIO], carrier: str, kind: str
) -> None:
    logger, text, structured = captured
    emit(logger, carrier, VALUES[kind])
    for out in (text.getvalue(), structured.getvalue()):
        assert out, "the record was dropped instead of masked"
        assert VALUES[kind] not in out
        assert VALUES[kind].replace(" ", "") not in out


def test_ordinary_text_is_left_alone(captured: tuple[logging.Logger, io.StringIO, io.StringIO]) -> None:
    logger, text, _ = captured
    logger.info("order %d shipped to warehouse %s", 1042, "north")
    logger.warning("order %d shipped to warehouse %s", 1042, "north")
    assert text.getvalue() == "WARNING order 1042 shipped to warehouse north\n"


def test_a_record_that_cannot_be_formatted_or_masked_is_written_safely(
    captured: tuple[logging.Logger, io.StringIO, io.StringIO],
) -> None:
    logger, text, _ = captured
    logger.warning("two %s %s", "only-one")  # wrong arguments: the filter must not raise into the application
    logger.warning("x" * (2 * 1024 * 1024))
    lines = text.getvalue().splitlines()
    assert lines[0].startswith("WARNING two %s %s") and lines[1] == f"WARNING {WITHHELD}"


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=500))
def test_any_message_is_logged_without_error(message: str) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, message, None, None)
    assert MaskingFilter().filter(record) is True
    assert isinstance(record.getMessage(), str)


def test_install_puts_the_filter_on_every_handler() -> None:
    logger = logging.getLogger("sdk-install-test")
    first, second = logging.StreamHandler(io.StringIO()), logging.StreamHandler(io.StringIO())
    logger.addHandler(first)
    logger.addHandler(second)
    try:
        masking = install(logger=logger)
        assert install(masking, logger=logger) is masking
        assert first.filters == [masking] and second.filters == [masking]
    finally:
        logger.handlers.clear()
