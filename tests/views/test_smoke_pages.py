"""Every admin page renders for each role, empty and with a record."""
import pytest

from extensions import db
from models import Asset, Bucket, Client, UnitType

LIST_PAGES = [
    "/admin/", "/admin/client/", "/admin/asset/", "/admin/assets/new/", "/admin/assets/unassigned/",
    "/admin/assets/unbound/", "/admin/assets/disregarded/", "/admin/bucket/", "/admin/billingreading/",
    "/admin/projection/", "/admin/unittype/", "/admin/suppression/", "/admin/auditlog/",
]
EMPTY_TEXTS = {
    "/admin/client/": "No clients", "/admin/asset/": "No assets", "/admin/bucket/": "No buckets",
    "/admin/unittype/": "No unit types", "/admin/suppression/": "No suppression rules",
    "/admin/billingreading/": "No billing readings", "/admin/projection/": "No projections",
    "/admin/assets/unbound/": "No unbound assets",
    "/admin/assets/disregarded/": "No disregarded assets", "/admin/apikey/": "No API keys",
}


@pytest.mark.parametrize("url", LIST_PAGES)
def test_every_page_renders_empty_for_a_viewer(viewer_client, url):
    response = viewer_client.get(url)
    assert response.status_code == 200, url
    html = response.get_data(as_text=True)
    if url in EMPTY_TEXTS:
        assert EMPTY_TEXTS[url] in html


@pytest.mark.parametrize("url", ["/admin/apikey/", "/admin/user/"])
def test_admin_only_pages(admin_client, viewer_client, staff_client, url):
    assert admin_client.get(url).status_code == 200
    assert staff_client.get(url).status_code == 403
    assert viewer_client.get(url).status_code == 403


def test_grids_show_records_with_links(app, admin_client):
    with app.app_context():
        unit = UnitType(name="vm-hours", aggregation="sum")
        client = Client(name="Acme <Dental>")
        asset = Asset(external_id="vm-1", source_type="vcenter", client=client, name="web-1")
        db.session.add_all([unit, client, asset, Bucket(client=client, name="VMs", unit_type=unit,
                                                        source_type="vcenter", assets=[asset])])
        db.session.commit()
        client_id = client.id
    html = admin_client.get("/admin/client/").get_data(as_text=True)
    assert "Acme &lt;Dental&gt;" in html and "<Dental>" not in html
    assert f'/admin/clients/{client_id}' in html
    assert "1 records · page 1 of 1" in html
    page = admin_client.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert "VMs" in page and "Billing History" in page
    assets = admin_client.get("/admin/asset/").get_data(as_text=True)
    assert "web-1" in assets and "Acme &lt;Dental&gt;" in assets


@pytest.mark.parametrize("url", ["/admin/client/new/", "/admin/asset/new/", "/admin/bucket/new/",
                                 "/admin/unittype/new/", "/admin/suppression/new/"])
def test_create_forms_render_for_staff_with_a_csrf_field(staff_client, url):
    response = staff_client.get(url)
    assert response.status_code == 200
    assert 'name="csrf_token"' in response.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/admin/apikey/new/", "/admin/user/new/"])
def test_admin_forms_render_for_admins(admin_client, url):
    assert admin_client.get(url).status_code == 200
