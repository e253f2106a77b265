"""CSV export of a grid as it is filtered and searched: a streamed response that reads rows in chunks
(`yield_per`), so a grid of any size is never loaded whole."""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from flask import Response, request, stream_with_context, url_for
from flask_admin import expose
from sqlalchemy.orm import joinedload

from billing.export import neutralise
from database import deadline

CHUNK = 500  # rows per fetch from the database (and per call of `csv_prepare`)

CsvColumn = tuple[str, Callable[[Any], Any]]  # (header, the cell's value for a row)


def csv_cell(value: Any) -> str:
    """A cell as text: numbers plain (never neutralised: -5 stays a number), times in ISO 8601 UTC, text safe from
    spreadsheet formulas (billing/export.py's rule)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (Decimal, int, float)):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return neutralise(str(value))


def csv_stream(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The CSV text, a line at a time: the header, then one line per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for lines in ([header], ([csv_cell(v) for v in row] for row in rows)):
        for line in lines:
            writer.writerow(line)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """The items in lists of `size` (the last one shorter), read lazily."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def csv_response(filename: str, lines: Iterator[str]) -> Response:
    """A streamed text/csv download; the request's context (database session, deadline) lives until the end."""
    response = Response(stream_with_context(lines), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


class CsvExportMixin:
    """A grid's "Export CSV" (GET `<grid>/export.csv` with the grid's own query arguments): the rows of the
    grid's query with its search, filters and sort applied, every page, as `csv_columns` says."""

    csv_columns: Sequence[CsvColumn] = ()
    csv_filename = "export.csv"

    def csv_prepare(self, rows: list[Any]) -> None:
        """Load what the columns need for a chunk of rows in one query (e.g. bucket usage); nothing by default."""

    def csv_query(self):
        """The grid's query as its list page builds it (Flask-Admin's `get_list`: search, filters, eager loads,
        sort), without the page limit and without the count(*) over the whole grid."""
        args = self._get_list_extra_args()
        sort_column = self._get_column_by_idx(args.sort)
        query, joins = self.get_query(), {}
        if self._search_supported and args.search:
            query, _, joins, _ = self._apply_search(query, None, joins, {}, args.search)
        if args.filters and self._filters:
            query, _, joins, _ = self._apply_filters(query, None, joins, {}, args.filters)
        for relation in self._auto_joins:
            query = query.options(joinedload(relation))
        query, _ = self._apply_sorting(query, joins, sort_column[0] if sort_column else None, args.sort_desc)
        return query

    def csv_rows(self) -> Iterator[list[Any]]:
        """The rows, the query built here, inside the stream: the response is read after the view's context has
        been torn down, so a query built in the view would run on a session nothing closes afterwards."""
        query = self.csv_query()
        for batch in chunks(query.yield_per(CHUNK), CHUNK):
            deadline.check()
            self.csv_prepare(batch)
            for row in batch:
                yield [value(row) for _, value in self.csv_columns]

    def csv_url(self) -> str:
        """This grid's export link, carrying the page's search, filters and sort."""
        return url_for(".export_csv", **request.args.to_dict())

    @expose("/export.csv")
    def export_csv(self) -> Response:
        return csv_response(self.csv_filename, csv_stream([h for h, _ in self.csv_columns], self.csv_rows()))
