"""Tables that stay readable in an 80-column terminal or a CI log.

Every column says whether it is shown by default or only with ``--wide``, and whether its cells
are free text. Identifiers, numbers and states are never wrapped into fragments; free text is
cut with an ellipsis to what the terminal leaves. A name may be long (a template's up to 120
characters): when the other columns would not fit beside it, the widest such columns are cut
with an ellipsis too, first to :data:`MIN_NAME` characters (so free text keeps its natural
width where it can), then, only if the table still does not fit, to their header's width.
``--wide`` shows every column at its natural width (lines may run past the terminal; nothing is
cut or folded); ``--json`` has everything.

A cell, a title or a header given as ``str`` is shown literally (a brief reading "[/red] sale"
shows those characters); a cell that is styled is a :class:`rich.text.Text`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from brandloop.api.cli.common import visible

Wide = Annotated[
    bool, typer.Option("--wide", help="every column, at full width (--json has everything)")
]

#: what a free-text column keeps at least, however narrow the terminal
MIN_TEXT = 8
#: what a long identifier or name keeps before free text is cut below its natural width
MIN_NAME = 24


@dataclass(frozen=True)
class Column:
    header: str
    wide: bool = False
    """shown only with ``--wide``"""
    text: bool = False
    """free text: cut with an ellipsis to fit (ids, numbers and states never are)"""
    key: bool = False
    """an id the next command takes (``memory forget --id``, ``spend reconcile``): never cut,
    however narrow the terminal (other columns give way first)"""
    justify: Literal["left", "right"] = "left"


#: a table cell: plain text shown as it is, or text with its own styles
Cell = str | Text


def _text(cell: Cell) -> Text:
    """The cell as it is measured and shown: control characters written out before the layout
    (the console writes them out too, after it: measured raw, the row came out too wide)."""
    return Text(visible(cell)) if isinstance(cell, str) else cell


def _cell_width(cell: Cell) -> int:
    return max((line.cell_len for line in _text(cell).split("\n")), default=0)


def _text_widths(natural: dict[int, int], room: int) -> dict[int, int]:
    """Share ``room`` among free-text columns: the narrow ones get what they need, the rest
    split what is left evenly."""
    widths: dict[int, int] = {}
    pending = sorted(natural, key=natural.__getitem__)
    while pending:
        share = max(MIN_TEXT, room // len(pending))
        index = pending.pop(0)
        widths[index] = min(natural[index], share)
        room -= widths[index]
    return widths


def _squeeze(widths: dict[int, int], room: int, floors: dict[int, int]) -> dict[int, int]:
    """Narrow the widest columns first, one character at a time and none below its floor,
    until their total fits ``room`` (or every column is at its floor)."""
    widths = dict(widths)
    excess = sum(widths.values()) - room
    while excess > 0:
        cuttable = [i for i in widths if widths[i] > floors[i]]
        if not cuttable:
            break
        widest = max(cuttable, key=widths.__getitem__)
        widths[widest] -= 1
        excess -= 1
    return widths


def _fixed_widths(
    columns: Sequence[Column], natural: dict[int, int], text: list[int], width: int
) -> dict[int, int]:
    """The widths of the columns that are not free text, cut only so the table fits
    ``width``: to :data:`MIN_NAME` while free text would otherwise be cut below its natural
    width, then to the header while free text would be cut below :data:`MIN_TEXT`."""
    fixed = {i: natural[i] for i in natural if i not in text}
    overhead = 3 * len(natural) + 1

    def floors(least: int) -> dict[int, int]:
        return {
            i: natural[i] if columns[i].key else min(natural[i], max(len(columns[i].header), least))
            for i in fixed
        }

    wanted = sum(natural[i] for i in text)
    fixed = _squeeze(fixed, width - overhead - wanted, floors(MIN_NAME))
    least = sum(min(natural[i], MIN_TEXT) for i in text)
    return _squeeze(fixed, width - overhead - least, floors(1))


def show(
    console: Console,
    title: str | None,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Cell]],
    *,
    wide: bool = False,
) -> None:
    """Print a table of ``rows`` on ``console``; text in ``str`` cells, the title and the
    headers is never read as rich markup."""
    cells = [list(row) for row in rows]
    shown = [i for i, column in enumerate(columns) if wide or not column.wide]
    natural = {
        i: max([len(columns[i].header), *(_cell_width(row[i]) for row in cells)]) for i in shown
    }
    text = [i for i in shown if columns[i].text]
    widths: dict[int, int] = {}
    if not wide:
        fixed = _fixed_widths(columns, natural, text, console.width)
        widths = {i: w for i, w in fixed.items() if w < natural[i]}
        if text:
            used = sum(fixed.values()) + 3 * len(shown) + 1
            widths |= _text_widths({i: natural[i] for i in text}, console.width - used)
    grid = Table(title=None if title is None else Text(title, style="table.title"))
    for i in shown:
        grid.add_column(
            Text(columns[i].header),
            justify=columns[i].justify,
            no_wrap=True,
            overflow="ellipsis",
            width=widths.get(i),
            min_width=None if i in widths else natural[i],
        )
    for row in cells:
        grid.add_row(*(_text(row[i]) for i in shown))
    if wide:  # a console as wide as the table: a terminal's own width would squeeze it
        total = Measurement.get(console, console.options.update_width(100_000), grid).maximum
        type(console)(  # the same kind of console: its text shown as it shows text
            file=console.file,
            width=max(total, console.width),
            highlight=False,
            markup=False,
            emoji=False,
            force_terminal=console.is_terminal,
            no_color=console.no_color,
        ).print(grid)
    else:
        console.print(grid)
