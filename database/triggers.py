"""Database triggers that hold finalized billing lines and their terms even against raw SQL (created with the tables by
`db.create_all()` once this module is imported: app.py imports it).

- A finalized line (`billing_readings.finalized` true) cannot be updated or deleted: an IntegrityError on both
  backends (SQLite `RAISE(ABORT)`, PostgreSQL SQLSTATE 23001 restrict_violation). Unfinalized lines stay free to
  change, and flipping `finalized` from false to true is allowed; nothing flips it back.
- When a line is inserted finalized, or becomes finalized, the assets its per-asset details name
  (`details["assets"][*]["asset_id"]`) are written to `finalized_line_assets`, whose foreign keys RESTRICT: the
  database itself refuses to delete an asset a finalized line was computed from (and with it its readings).

- A contract term (`bucket_terms`) that a finalized line was computed from cannot be inserted over, updated or
  deleted: a term *governs* the periods from its `effective_from` up to the bucket's next term (its first term also
  governs every earlier period), and no finalized ordinary line of the bucket may lie in the periods a changed,
  added or removed term governs.

The migrations that introduced them keep their own frozen copies; `tests/database/test_integrity_schema.py` holds both equal.
"""
from __future__ import annotations

from sqlalchemy import DDL, event

from extensions import db

SQLITE_TRIGGERS = ("finalized_line_no_update", "finalized_line_no_delete", "finalized_line_assets_on_insert",
                   "finalized_line_assets_on_finalize", "finalized_term_no_insert", "finalized_term_no_update",
                   "finalized_term_no_delete")
TERM_REFUSAL = "a contract term that a finalized billing line was computed from cannot be changed"


def _sqlite_governs(term: str) -> str:
    """SQLite: whether the term row `term` (NEW or OLD) governs the period of a finalized ordinary line."""
    return (
        "EXISTS (SELECT 1 FROM billing_readings AS l WHERE l.bucket_id = {t}.bucket_id AND l.finalized"
        " AND l.adjusts_period IS NULL AND (l.period_start >= {t}.effective_from OR NOT EXISTS (SELECT 1 FROM"
        " bucket_terms AS o WHERE o.bucket_id = {t}.bucket_id AND o.effective_from < {t}.effective_from))"
        " AND NOT EXISTS (SELECT 1 FROM bucket_terms AS o WHERE o.bucket_id = {t}.bucket_id"
        " AND o.effective_from > {t}.effective_from AND o.effective_from <= l.period_start))"
    ).format(t=term)


_SQLITE_INDEX_ASSETS = """
    INSERT INTO finalized_line_assets (line_id, asset_id)
    SELECT DISTINCT NEW.id, json_extract(item.value, '$.asset_id') FROM json_each(NEW.details, '$.assets') AS item;
"""

_PG_INDEX_ASSETS = """
    INSERT INTO finalized_line_assets (line_id, asset_id)
    SELECT DISTINCT NEW.id, (item ->> 'asset_id')::integer
    FROM json_array_elements(COALESCE(NEW.details -> 'assets', '[]'::json)) AS item;
"""

CREATE_STATEMENTS: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "CREATE TRIGGER finalized_line_no_update BEFORE UPDATE ON billing_readings FOR EACH ROW WHEN OLD.finalized"
        " BEGIN SELECT RAISE(ABORT, 'a finalized billing line cannot be changed'); END",
        "CREATE TRIGGER finalized_line_no_delete BEFORE DELETE ON billing_readings FOR EACH ROW WHEN OLD.finalized"
        " BEGIN SELECT RAISE(ABORT, 'a finalized billing line cannot be deleted'); END",
        "CREATE TRIGGER finalized_line_assets_on_insert AFTER INSERT ON billing_readings FOR EACH ROW"
        f" WHEN NEW.finalized BEGIN {_SQLITE_INDEX_ASSETS} END",
        "CREATE TRIGGER finalized_line_assets_on_finalize AFTER UPDATE OF finalized ON billing_readings FOR EACH ROW"
        f" WHEN NEW.finalized AND NOT OLD.finalized BEGIN {_SQLITE_INDEX_ASSETS} END",
        f"CREATE TRIGGER finalized_term_no_insert BEFORE INSERT ON bucket_terms FOR EACH ROW WHEN {_sqlite_governs('NEW')}"
        f" BEGIN SELECT RAISE(ABORT, '{TERM_REFUSAL}'); END",
        f"CREATE TRIGGER finalized_term_no_update BEFORE UPDATE ON bucket_terms FOR EACH ROW"
        f" WHEN {_sqlite_governs('OLD')} OR {_sqlite_governs('NEW')} BEGIN SELECT RAISE(ABORT, '{TERM_REFUSAL}'); END",
        f"CREATE TRIGGER finalized_term_no_delete BEFORE DELETE ON bucket_terms FOR EACH ROW WHEN {_sqlite_governs('OLD')}"
        f" BEGIN SELECT RAISE(ABORT, '{TERM_REFUSAL}'); END",
    ),
    "postgresql": (
        """CREATE OR REPLACE FUNCTION refuse_finalized_line_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
        MESSAGE = 'a finalized billing line cannot be ' || CASE TG_OP WHEN 'DELETE' THEN 'deleted' ELSE 'changed' END;
END
$$""",
        "CREATE TRIGGER finalized_line_immutable BEFORE UPDATE OR DELETE ON billing_readings FOR EACH ROW"
        " WHEN (OLD.finalized) EXECUTE FUNCTION refuse_finalized_line_change()",
        f"""CREATE OR REPLACE FUNCTION index_finalized_line_assets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{_PG_INDEX_ASSETS}
    RETURN NULL;
END
$$""",
        "CREATE TRIGGER finalized_line_assets_on_insert AFTER INSERT ON billing_readings FOR EACH ROW"
        " WHEN (NEW.finalized) EXECUTE FUNCTION index_finalized_line_assets()",
        "CREATE TRIGGER finalized_line_assets_on_finalize AFTER UPDATE OF finalized ON billing_readings FOR EACH ROW"
        " WHEN (NEW.finalized AND NOT OLD.finalized) EXECUTE FUNCTION index_finalized_line_assets()",
        """CREATE OR REPLACE FUNCTION term_governs_finalized_line(term_bucket integer, term_from timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM billing_readings AS l WHERE l.bucket_id = term_bucket AND l.finalized
        AND l.adjusts_period IS NULL
        AND (l.period_start >= term_from OR NOT EXISTS (SELECT 1 FROM bucket_terms AS o
                                                        WHERE o.bucket_id = term_bucket AND o.effective_from < term_from))
        AND NOT EXISTS (SELECT 1 FROM bucket_terms AS o WHERE o.bucket_id = term_bucket
                        AND o.effective_from > term_from AND o.effective_from <= l.period_start))
$$""",
        f"""CREATE OR REPLACE FUNCTION refuse_finalized_term_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP <> 'INSERT' AND term_governs_finalized_line(OLD.bucket_id, OLD.effective_from))
       OR (TG_OP <> 'DELETE' AND term_governs_finalized_line(NEW.bucket_id, NEW.effective_from)) THEN
        RAISE EXCEPTION USING ERRCODE = 'restrict_violation', MESSAGE = '{TERM_REFUSAL}';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$""",
        "CREATE TRIGGER finalized_term_immutable BEFORE INSERT OR UPDATE OR DELETE ON bucket_terms FOR EACH ROW"
        " EXECUTE FUNCTION refuse_finalized_term_change()",
    ),
}

for _dialect, _statements in CREATE_STATEMENTS.items():
    for _statement in _statements:  # after every table: the term triggers read billing_readings and bucket_terms
        event.listen(db.metadata, "after_create", DDL(_statement).execute_if(dialect=_dialect))
