"""Database triggers that hold finalized billing lines even against raw SQL (created with the tables by
`db.create_all()` once this module is imported: app.py imports it).

- A finalized line (`billing_readings.finalized` true) cannot be updated or deleted: an IntegrityError on both
  backends (SQLite `RAISE(ABORT)`, PostgreSQL SQLSTATE 23001 restrict_violation). Unfinalized lines stay free to
  change, and flipping `finalized` from false to true is allowed; nothing flips it back.
- When a line is inserted finalized, or becomes finalized, the assets its per-asset details name
  (`details["assets"][*]["asset_id"]`) are written to `finalized_line_assets`, whose foreign keys RESTRICT: the
  database itself refuses to delete an asset a finalized line was computed from (and with it its readings).

The migration that introduced them keeps its own frozen copy; `tests/database/test_integrity_schema.py` holds both equal.
"""
from __future__ import annotations

from sqlalchemy import DDL, event

from models import finalized_line_assets

SQLITE_TRIGGERS = ("finalized_line_no_update", "finalized_line_no_delete", "finalized_line_assets_on_insert",
                   "finalized_line_assets_on_finalize")

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
    ),
}

for _dialect, _statements in CREATE_STATEMENTS.items():
    for _statement in _statements:
        event.listen(finalized_line_assets, "after_create", DDL(_statement).execute_if(dialect=_dialect))
