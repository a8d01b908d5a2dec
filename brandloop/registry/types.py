"""Column types wide enough for every value a column can hold, on SQLite and PostgreSQL alike.

SQLite stores any integer in 64 bits and any real as an IEEE double whatever the declared type,
so a value that fits there must fit in PostgreSQL too: counters, sizes, byte counts and
autoincrement ids are ``BIGINT`` there (``INTEGER`` stays on SQLite, where an ``INTEGER PRIMARY
KEY`` is the rowid and autoincrements), and money is ``NUMERIC(24, 12)``: up to 10^12 dollars,
exact to 10^-12 of a dollar, summed exactly, read back as ``float`` (a double on SQLite, as
before). Seeds were widened earlier (migration 0008).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Float, Integer, Numeric
from sqlalchemy.types import TypeDecorator, TypeEngine

from brandloop.errors import BadInputError

__all__ = [
    "MAX_MONEY_USD",
    "MONEY_DECIMALS",
    "MONEY_PRECISION",
    "MONEY_SCALE",
    "Count",
    "Money",
    "Timestamp",
    "check_money",
    "money",
    "usd",
]

MONEY_PRECISION = 24
MONEY_SCALE = 12
#: The largest amount a person may state (a budget limit, a reconciled charge): well inside
#: what ``NUMERIC(24, 12)`` holds, so sums of such amounts still fit.
MAX_MONEY_USD = 1_000_000_000
#: Money is kept to the micro-dollar: every amount the ledger stores is rounded to this many
#: decimals, so every sum of them is too; a sum read back (a double on SQLite adds float noise
#: such as 0.060000000000000005) is rounded to it again before anyone sees it.
MONEY_DECIMALS = 6


def money(value: float) -> float:
    """``value`` in dollars to the micro-dollar (:data:`MONEY_DECIMALS`): what the CLI's JSON,
    the API's answers and every budget check see of a sum of stored amounts."""
    return round(float(value), MONEY_DECIMALS) + 0.0  # + 0.0: -0.0 is 0.0 ("$-0.00" once)


def usd(value: float, places: int = 3) -> str:
    """``value`` as people read it everywhere (CLI tables and lines, run reasons, the studio):
    dollars with at least ``places`` decimals and as many more as it needs, up to the
    micro-dollar the ledger keeps, so an amount prints exactly - $0.0125 is $0.0125, never
    $0.013, and a limit of $0.005 with 2 places $0.005, never $0.01. JSON keeps numbers."""
    exact = f"{money(value):.{MONEY_DECIMALS}f}".rstrip("0")
    decimals = max(places, len(exact.partition(".")[2]))
    return f"${money(value):.{decimals}f}"


def check_money(value: float, what: str) -> float:
    """``value`` if it is an amount of dollars a column can hold: finite, 0 or more and at
    most :data:`MAX_MONEY_USD`; else a :class:`BadInputError` naming ``what``. (A NaN would
    reach the database as NULL; infinity and 1e308 are no amount of money.)"""
    if not math.isfinite(value):
        raise BadInputError(f"{what} must be a finite number of dollars, not {value}")
    if value < 0:
        raise BadInputError(f"{what} cannot be negative")
    if value > MAX_MONEY_USD:
        raise BadInputError(f"{what} must be at most ${MAX_MONEY_USD:,}")
    return value + 0.0  # -0.0 is 0.0


class _Dollars(TypeDecorator[float]):
    """``NUMERIC`` that takes a float by its shortest exact decimal form: PostgreSQL's own cast
    from double keeps only 15 significant digits."""

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(repr(float(value)))


#: A counter, a size, a byte count or an autoincrement id.
Count: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")

#: An amount of money in US dollars.
Money: TypeEngine[float] = _Dollars().with_variant(Float(), "sqlite")


class Timestamp(TypeDecorator[datetime]):
    """A moment in UTC, read back with its time zone on every database.

    PostgreSQL keeps the zone (``timestamptz``); SQLite keeps text without one, so a moment is
    stored as its UTC wall time and read back as UTC. A naive value is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
