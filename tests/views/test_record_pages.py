"""The client page (where an account manager starts), the bucket page, Unbound Assets' $ at stake, per-row quick
actions and the Finalize button offered only where it can succeed."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from billing.periods import current_period_start, period_label, previous_period
from extensions import db
from models import Asset, AuditLog, BillingReading, Bucket, Client
from tests import factories as f
from tests.conftest import csrf_token


def rows(html: str, table_class: str) -> list[str]:
    """The <tr> bodies of the table with that class (header excluded)."""
    table = re.search(rf'<table[^>]*class="[^"]*{table_class}[^"]*".*?</table>', html, re.S)
    assert table, table_class
    return re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(0).split("<tbody>")[1], re.S)


def hrefs(html: str, css: str) -> str:
    found = re.search(rf'class="{css}" href="([^"]+)"', html)
    assert found, css
    return found.group(1).replace("&amp;", "&")


def test_client_page_links_arrive_at_the_clients_rows(admin_client, provider):
    html = admin_client.get(f"/admin/clients/{provider['acme']}").get_data(as_text=True)
    assert [re.sub(r"<[^>]+>", "", r).split()[0] for r in rows(html, "client-history")] == [
        period_label(current_period_start()), period_label(previous_period(current_period_start())),
        period_label(previous_period(previous_period(current_period_start())))]
    # Buckets grid: Acme's two buckets, nobody else's.
    grid = admin_client.get(hrefs(html, "link-buckets")).get_data(as_text=True)
    assert "Acme VMs" in grid and "Acme Storage" in grid and "Globex" not in grid
    # Billing Readings: Acme's lines only (4: VMs ×3 periods, Storage ×1).
    lines = admin_client.get(hrefs(html, "link-billing")).get_data(as_text=True)
    assert "Globex" not in lines and "Initech" not in lines
    assert "4 records" in lines or lines.count('href="/admin/clients/') >= 4


def test_client_history_table_has_the_worked_out_sums(admin_client, provider):
    html = admin_client.get(f"/admin/clients/{provider['acme']}").get_data(as_text=True)
    last = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", rows(html, "client-history")[1])).split()
    # Last period: Acme VMs base 100 + overage $40; Acme Storage base 100, buffer $25 -> final 240.
    assert last[1:6] == ["2", "$200.00", "$40.00", "$25.00", "$240.00"]


def test_bucket_page_is_readable(admin_client, provider):
    html = admin_client.get(f"/admin/buckets/page/{provider['acme_vm']}").get_data(as_text=True)
    assert "Acme VMs" in html and "$1.00" in html and "$2.00" in html
    assert "1.000000" not in html and ">True<" not in html
    assert not re.search(r"\d\d:\d\d:\d\d\.\d+", html)
    assert len(rows(html, "bucket-history")) == 3
    assert "/admin/clients/" in hrefs(html, "bucket-client")
    unit = admin_client.get(hrefs(html, "bucket-unit-type")).get_data(as_text=True)
    assert "vm-hours" in unit and "storage-gb" not in unit
    lines = admin_client.get(hrefs(html, "bucket-lines-link")).get_data(as_text=True)
    assert "Acme" in lines and "Globex" not in lines


def _unbound_world(app):
    """Acme with asset vm-1 reporting gb (sum, overage $0.045) this month and no bucket of gb: 10 + 30.5 = 40.5 units
    -> 40.5 × $0.045 = $1.8225 -> $1.82 at stake; a VMs bucket of another unit type exists."""
    from decimal import Decimal

    now = datetime.now(timezone.utc)
    start = current_period_start(now)
    with app.app_context():
        acme = f.client("Acme")
        gb = f.unit_type("gb")
        gb.overage_price = Decimal("0.045")
        other = f.unit_type("vm-hours")
        f.bucket("Acme VMs", owner=acme, unit=other)
        asset = f.asset("vm-1", acme)
        asset.acknowledged = False
        f.readings(asset, [(start.isoformat(), "10"), ((start + timedelta(minutes=5)).isoformat(), "30.5")], gb)
        db.session.commit()
        return asset.id, acme.id


def test_unbound_assets_show_the_unit_type_usage_and_money_at_stake(admin_client, app):
    asset_id, _ = _unbound_world(app)
    html = admin_client.get("/admin/assets/unbound/").get_data(as_text=True)
    cell = re.search(r'<span class="unbound-unit">(.*?)</span></span>', html, re.S).group(1)
    assert "<strong>gb</strong>: 40.5" in cell and "$1.82" in cell


def test_client_page_lists_open_issues(admin_client, app):
    asset_id, client_id = _unbound_world(app)
    html = admin_client.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert "issue-unbound" in html and "vm-1</a> (gb)" in html
    assert "issue-new" in html
    unbound = admin_client.get(hrefs(html, "link-unbound")).get_data(as_text=True)
    assert "vm-1" in unbound


def _post(client, url: str, back: str):
    return client.post(url, data={"csrf_token": csrf_token(client, back), "next": back})


def test_row_actions_ack_bind_review_restore_are_audited(admin_client, app):
    asset_id, client_id = _unbound_world(app)
    with app.app_context():
        gb_bucket = f.bucket("Acme GB", owner=db.session.get(Client, client_id), unit=f.unit_type("gb"),
                             reviewed=False)
        bucket_id = gb_bucket.id
        db.session.commit()
    assert _post(admin_client, f"/admin/row/asset/{asset_id}/ack", "/admin/asset/").status_code == 302
    assert _post(admin_client, f"/admin/row/asset/{asset_id}/bind", "/admin/assets/unbound/").status_code == 302
    assert _post(admin_client, f"/admin/row/bucket/{bucket_id}/review", "/admin/bucket/").status_code == 302
    with app.app_context():
        asset = db.session.get(Asset, asset_id)
        assert asset.acknowledged and [b.id for b in asset.buckets] == [bucket_id]
        assert db.session.get(Bucket, bucket_id).reviewed
        asset.disregarded_at = datetime.now(timezone.utc)
        db.session.commit()
    response = _post(admin_client, f"/admin/row/asset/{asset_id}/restore", "/admin/assets/disregarded/")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/assets/disregarded/"
    with app.app_context():
        assert db.session.get(Asset, asset_id).disregarded_at is None
        audited = {(a.table, a.record_id) for a in db.session.scalars(select(AuditLog).where(AuditLog.action == "update"))}
        assert ("assets", str(asset_id)) in audited and ("buckets", str(bucket_id)) in audited


def test_row_actions_refuse_viewers_and_missing_csrf(app, viewer_client, admin_client):
    asset_id, _ = _unbound_world(app)
    assert viewer_client.post(f"/admin/row/asset/{asset_id}/ack",
                              data={"csrf_token": csrf_token(viewer_client, "/admin/")}).status_code == 403
    assert admin_client.post(f"/admin/row/asset/{asset_id}/ack").status_code == 400
    with app.app_context():
        assert not db.session.get(Asset, asset_id).acknowledged
    html = viewer_client.get("/admin/asset/").get_data(as_text=True)
    assert "row-action" not in html
    html = admin_client.get("/admin/asset/").get_data(as_text=True)
    assert "row-action-ack" in html


def test_no_finalize_button_for_the_open_month(admin_client, app):
    """Lines only in the current month: no Finalize button; a line in last month: Finalize <last month>."""
    now = datetime.now(timezone.utc)
    this, last = current_period_start(now), previous_period(current_period_start(now))
    from tests.reportdata import add_line

    with app.app_context():
        bucket = f.bucket("Acme VMs", owner=f.client("Acme"), commit="1", base="1")
        add_line(bucket, this, "1")
        db.session.commit()
        bucket_id = bucket.id
    html = admin_client.get("/admin/billingreading/").get_data(as_text=True)
    assert "finalize-period" not in html and f"Finalize {period_label(this)}" not in html
    with app.app_context():
        add_line(db.session.get(Bucket, bucket_id), last, "1")
        db.session.commit()
    html = admin_client.get(f"/admin/billingreading/?flt0_0={period_label(last)}").get_data(as_text=True)
    assert f"Finalize {period_label(last)}" in html
    html = admin_client.get("/admin/billingreading/").get_data(as_text=True)
    assert f"Finalize {period_label(last)}" in html and f"Finalize {period_label(this)}" not in html
    html = admin_client.get(f"/admin/billingreading/?flt0_0={period_label(this)}").get_data(as_text=True)
    assert "finalize-period" not in html
    with app.app_context():
        db.session.execute(BillingReading.__table__.update().values(finalized=True))
        db.session.commit()
    for url in (f"/admin/billingreading/?flt0_0={period_label(last)}", "/admin/billingreading/"):
        assert "finalize-period" not in admin_client.get(url).get_data(as_text=True)


def test_bucket_page_bound_assets_and_sub_cent_prices(admin_client, app):
    """Base $0.045 and overage $0.0125 show at their precision; vm-1's 40.5 units this month show on its row."""
    _unbound_world(app)
    with app.app_context():
        asset = db.session.scalar(select(Asset).where(Asset.external_id == "vm-1"))
        bucket = f.bucket("Acme GB", owner=asset.client, unit=f.unit_type("gb"), assets=[asset], base="0.045",
                          overage="0.0125")
        db.session.commit()
        bucket_id = bucket.id
    html = admin_client.get(f"/admin/buckets/page/{bucket_id}").get_data(as_text=True)
    assert "$0.045 per unit" in html and "$0.0125 per unit" in html
    [row] = rows(html, "bucket-assets")
    assert "vm-1" in row and ">40.5<" in row
