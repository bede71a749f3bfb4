"""Cells of delimited tables and SQL inserts, for the finders that mask a cell by its column's header
("Employee ID", "Name").

A table is a header line and the lines under it with as many cells, split by the header's delimiter: `|`
(markdown and ASCII tables), a tab (TSV), `;` or `,` (CSV). A markdown rule line (`---|---`) is skipped; a
line with another number of cells ends the table and may start the next one. Quotes around a CSV cell are not
part of its value. A CSV header's cells must read as column names (words of letters, at most one digit at the
end, at most 40 characters), so a sentence with commas or a list of numbers does not start a table.

`INSERT INTO t (col, ...) VALUES (v, ...), (...)` pairs each value with its column the same way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import NamedTuple

DELIMITERS = ("|", "\t", ";", ",")
RULE_LINE = re.compile(r"[\s|:\-+]*")
QUOTES = "\"'"
COLUMN_NAME = re.compile(r"(?=.{1,40}$)[^\W\d_]+(?:[ _.#/()\-]+[^\W\d_]+)*[ _.]?\d?")  # `phone2`, not `n. 2023`


class Cell(NamedTuple):
    header: str  # the header cell above, stripped
    start: int  # offset of `value` in the text
    value: str


SQL_INSERT = re.compile(r"(?i)\bINSERT\s+INTO\s+[\w.`\"\[\]]+\s*\(([^()]*)\)\s*VALUES")
SQL_ROW = re.compile(r"\s*,?\s*\(")
SQL_VALUE = re.compile(r"\s*(?:'((?:[^'\n]|'')*)'|\"((?:[^\"\n]|\"\")*)\"|([^\s,()'\"]+))\s*([,)])")


@functools.lru_cache(maxsize=16)
def table_cells(text: str) -> tuple[Cell, ...]:
    """Every non-empty data cell of every delimited table and SQL insert in `text`, with its column's header.
    Cached: the ID finder and the name finder both read the tables of the text one detection looks at."""
    cells = tuple(_delimited_cells(text))
    return cells + tuple(_sql_cells(text)) if "insert" in text.lower() else cells


def _sql_cells(text: str) -> Iterator[Cell]:
    for insert in SQL_INSERT.finditer(text):
        columns = [c.strip().strip('`"[]') for c in insert.group(1).split(",")]
        pos = insert.end()
        while (row := SQL_ROW.match(text, pos)) is not None:
            pos, closed = row.end(), False
            for column in columns:
                value = SQL_VALUE.match(text, pos)
                if value is None:
                    break
                group = next(g for g in (1, 2, 3) if value.group(g) is not None)
                if value.group(group):
                    yield Cell(column, value.start(group), value.group(group))
                pos, closed = value.end(), value.group(4) == ")"
                if closed:
                    break
            if not closed:
                break


def _delimited_cells(text: str) -> Iterator[Cell]:
    header: list[str] | None = None
    delimiter = ""
    pos = 0
    for line in text.split("\n"):
        cells = line.split(delimiter) if header is not None else []
        if header is not None and len(cells) == len(header):
            if not RULE_LINE.fullmatch(line):
                at = pos
                for head, cell in zip(header, cells, strict=True):
                    value = cell.strip().strip(QUOTES).strip()
                    if value:
                        yield Cell(head, at + cell.index(value), value)
                    at += len(cell) + len(delimiter)
        else:
            delimiter = next((d for d in DELIMITERS if d in line), "")
            header = _header(line, delimiter) if delimiter else None
        pos += len(line) + 1


def _header(line: str, delimiter: str) -> list[str] | None:
    cells = [c.strip().strip(QUOTES).strip() for c in line.split(delimiter)]
    if delimiter in ",;" and not all(COLUMN_NAME.fullmatch(c) for c in cells):
        return None
    return cells


def header_words(header: str) -> str:
    """A header cell as words: `first_name`, `firstName` and `first-name` read as `first name`."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header)
    return re.sub(r"[_\-.]+", " ", spaced).strip()
