"""Search on every grid people look things up in, and the columns that say who and what (issue 12 item 11)."""
import re
from datetime import datetime, timezone

from api.keys import create_api_key
from extensions import db
from models import AuditLog, User
from tests import factories


def rows(html: str) -> str:
    """The grid's table body (the page's other tables left out)."""
    table = html.split('class="table table-striped table-bordered table-hover model-list"')[1].split("</table>")[0]
    return table.split("</thead>")[1]


def test_buckets_search_covers_client_names(admin_client, provider):
    html = rows(admin_client.get("/admin/bucket/?search=Initech").get_data(as_text=True))
    assert "Initech Storage" in html and "Initech VMs" in html
    assert "Acme" not in html and "Globex" not in html


def test_billing_readings_search_by_client_and_bucket(admin_client, provider):
    html = rows(admin_client.get("/admin/billingreading/?search=Globex").get_data(as_text=True))
    assert html.count("<tr") == 2  # Globex VMs: 2026-09 and 2026-10 (shifted to now)
    assert "Acme" not in html
    html = rows(admin_client.get("/admin/billingreading/?search=Acme+Storage").get_data(as_text=True))
    assert html.count("<tr") == 1 and "$100.00" in html  # Acme Storage's one line: base $100


def test_projections_search(admin_client, provider):
    html = rows(admin_client.get("/admin/projection/?search=Storage").get_data(as_text=True))
    assert html.count("<tr") == 2  # Acme Storage $150.00 and Initech Storage $50.00
    assert "$150.00" in html and "$50.00" in html and "$200.00" not in html


def test_audit_log_user_column_record_links_and_search(app, admin_client):
    with app.app_context():
        owner = factories.client("Umbrella")
        admin = db.session.query(User).filter_by(email="admin@example.com").one()
        db.session.commit()
        entry = db.session.query(AuditLog).filter_by(table="clients", record_id=str(owner.id)).one()
        entry.user_id = admin.id  # as if the admin had saved it through a form
        db.session.commit()
        client_id = owner.id
    html = rows(admin_client.get("/admin/auditlog/?search=admin@example.com").get_data(as_text=True))
    assert "admin@example.com" in html
    assert f'href="/admin/clients/{client_id}"' in html
    head = admin_client.get("/admin/auditlog/").get_data(as_text=True)
    assert re.search(r">\s*User\s*</a>", head)
    assert "admin@example.com" not in rows(admin_client.get("/admin/auditlog/?search=nobody").get_data(as_text=True))


def test_api_keys_show_client_link_and_prefix(app, admin_client):
    with app.app_context():
        owner = factories.client("Acme")
        db.session.commit()
        key, _ = create_api_key("collector", "ingest", owner.id)
        create_api_key("reports", "readonly")
        prefix, client_id = key.prefix, owner.id
    html = rows(admin_client.get("/admin/apikey/").get_data(as_text=True))
    assert f'<a href="/admin/clients/{client_id}">Acme</a>' in html
    assert f"<code>{prefix}…</code>" in html
    assert "all clients" in html
    assert "collector" in rows(admin_client.get("/admin/apikey/?search=Acme").get_data(as_text=True))


def test_disregarded_shows_the_date_and_a_link(app, admin_client):
    with app.app_context():
        asset = factories.asset("vm-gone", factories.client())
        asset.disregarded_at = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
        db.session.commit()
        asset_id = asset.id
    html = admin_client.get("/admin/assets/disregarded/").get_data(as_text=True)
    assert "Disregarded Assets" in html
    body = rows(html)
    assert f'<a href="/admin/assets/page/{asset_id}">vm-gone</a>' in body
    assert "2026-11-20 09:30 UTC" in body


def test_assets_search_covers_client_names(app, admin_client):
    with app.app_context():
        factories.asset("vm-1", factories.client("Acme"))
        factories.asset("vm-2", factories.client("Globex"))
        db.session.commit()
    body = rows(admin_client.get("/admin/asset/?search=Globex").get_data(as_text=True))
    assert "vm-2" in body and "vm-1" not in body
