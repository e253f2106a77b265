"""CSV export of Projections, Over/Under, Assets and Buckets: streamed in chunks, as the grid is filtered and
searched (issue 12 item 14)."""
import csv
import io

import pytest
from sqlalchemy import event

from extensions import db
from tests import factories
from views import csv_export
from views.projections import CommitStatusFilter


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv" and response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def grid_filter_arg(app, endpoint: str, kind: type) -> str:
    """The query argument of a grid's filter, as its Add Filter menu writes it (`flt0_<index>`)."""
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == endpoint)
    return f"flt0_{next(i for i, f in enumerate(view._filters) if isinstance(f, kind))}"


def test_projections_csv_every_row_with_the_grids_sort(admin_client, provider):
    lines = read_csv(admin_client.get("/admin/projection/export.csv"))
    # default sort: projected cost, highest first (tests/reportdata.py)
    assert [(r["bucket"], r["projected_cost"]) for r in lines] == [
        ("Acme VMs", "200.00"), ("Acme Storage", "150.00"), ("Globex VMs", "70.00"), ("Initech Storage", "50.00")]
    assert lines[1]["pct_of_commit"].startswith("125") and lines[1]["commit"] == "200.000000"


def test_projections_csv_honours_filter_and_search(app, admin_client, provider):
    over = grid_filter_arg(app, "projection", CommitStatusFilter)
    page = admin_client.get(f"/admin/projection/?{over}=over&search=Acme").get_data(as_text=True)
    assert f"/admin/projection/export.csv?{over}=over&amp;search=Acme" in page
    lines = read_csv(admin_client.get(f"/admin/projection/export.csv?{over}=over&search=Acme"))
    assert [r["bucket"] for r in lines] == ["Acme VMs", "Acme Storage"]  # 150 > 100 and 250 > 200; Globex not Acme


def test_buckets_csv_has_usage_and_follows_the_search(admin_client, provider):
    lines = read_csv(admin_client.get("/admin/bucket/export.csv?search=Acme"))
    assert {r["name"]: r["usage"] for r in lines} == {"Acme VMs": "75.000000", "Acme Storage": "250.000000"}
    assert {r["client"] for r in lines} == {"Acme"}


def test_assets_csv_and_the_scoped_grids(app, admin_client):
    with app.app_context():
        owner = factories.client("Acme")
        factories.asset("=HYPERLINK(evil)", owner)
        factories.asset("vm-2", None)
        db.session.commit()
    lines = read_csv(admin_client.get("/admin/asset/export.csv"))
    assert sorted(r["asset_id"] for r in lines) == ["'=HYPERLINK(evil)", "vm-2"]  # no formula reaches a sheet
    unassigned = read_csv(admin_client.get("/admin/assets/unassigned/export.csv"))
    assert [r["asset_id"] for r in unassigned] == ["vm-2"]


def test_over_under_csv_follows_the_status_tab(admin_client, provider):
    lines = read_csv(admin_client.get("/admin/over-under/export.csv"))
    by_client = {r["client"]: r for r in lines}
    # last period: Acme final 140 + 100 = 240, committed 100 + 100, overage 40, buffer 25 (mixed)
    assert by_client["Acme"]["status"] == "mixed" and by_client["Acme"]["final_cost"].startswith("240")
    assert by_client["Acme"]["overage"].startswith("40") and by_client["Acme"]["buffer"].startswith("25")
    under = read_csv(admin_client.get("/admin/over-under/export.csv?status=under"))
    assert [r["client"] for r in under] == ["Globex"]


def test_export_reads_in_chunks_never_all_rows(app, admin_client, monkeypatch):
    """Seven buckets read three at a time: three usage look-ups (one per chunk), never one per row or one for all."""
    monkeypatch.setattr(csv_export, "CHUNK", 3)
    with app.app_context():
        for n in range(7):
            factories.bucket(f"B{n}")
        db.session.commit()
    calls = []
    from views.buckets import BucketView

    original = BucketView.csv_prepare
    monkeypatch.setattr(BucketView, "csv_prepare", lambda self, rows: calls.append(len(rows)) or original(self, rows))
    lines = read_csv(admin_client.get("/admin/bucket/export.csv"))
    assert len(lines) == 7 and calls == [3, 3, 1]


@pytest.mark.parametrize("url", ["/admin/bucket/export.csv", "/admin/asset/export.csv",
                                 "/admin/projection/export.csv", "/admin/over-under/export.csv"])
def test_viewers_may_export(app, viewer_client, provider, url):
    assert viewer_client.get(url).status_code == 200


def test_export_needs_a_login(client):
    assert client.get("/admin/bucket/export.csv").status_code == 302


def test_export_queries_do_not_grow_with_rows(app, admin_client):
    """Statements for 4 and for 40 buckets are the same (chunks of 500): no query per row."""
    def statements() -> int:
        seen = []
        with app.app_context():
            listener = lambda *args: seen.append(1)  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            try:
                assert admin_client.get("/admin/bucket/export.csv").status_code == 200
            finally:
                event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen)

    with app.app_context():
        for n in range(4):
            factories.bucket(f"A{n}")
        db.session.commit()
    few = statements()
    with app.app_context():
        for n in range(36):
            factories.bucket(f"C{n}")
        db.session.commit()
    assert statements() == few


@pytest.mark.parametrize("url", ["/admin/bucket/export.csv", "/admin/over-under/export.csv"])
def test_a_read_export_holds_no_transaction_open_once_its_last_line_is_sent(app, admin_client, provider, url):
    """The response is read but not closed, as a test client (or a server slow to close it) leaves it: the
    export's transaction must end with the stream, or its locks block TRUNCATE, ALTER and DROP (a CI run hung)."""
    from sqlalchemy import text

    read_csv(admin_client.get(url))
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("sessions holding locks are read from pg_locks")
        holders, queries = db.session.execute(text(
            "SELECT count(DISTINCT l.pid), string_agg(DISTINCT a.query, ' | ') FROM pg_locks l "
            "JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a ON a.pid = l.pid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
            "AND l.pid <> pg_backend_pid()")).one()
        db.session.remove()
    assert holders == 0, queries
