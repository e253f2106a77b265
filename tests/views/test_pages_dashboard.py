"""Dashboard and Over/Under pages for each role, with the hand-computed provider and empty."""
import json
import re
from datetime import datetime, timezone

import pytest

from billing.periods import current_period_start, period_label, previous_period

NOW = datetime.now(timezone.utc)
LAST = period_label(previous_period(current_period_start(NOW)))


def figures(html: str) -> dict[str, dict]:
    found = re.findall(r'data-chart="([^"]+)" data-figure><script type="application/json">(.*?)</script>', html, re.S)
    return {name: json.loads(body) for name, body in found}


@pytest.mark.parametrize("role_client", ["admin_client", "viewer_client"])
def test_dashboard_with_data(request, provider, role_client):
    client = request.getfixturevalue(role_client)
    html = client.get("/admin/").get_data(as_text=True)
    assert 'data-tile="projected_rev"' in html and "$470.00" in html
    assert "+38.2%" in html  # (470 − 340) / 340
    assert "Clients projected to exceed their commit who were under last period." in html
    assert html.index("Acme Storage") < html.index("Globex VMs") and "125.0%" in html
    assert "74.5%" in html and "$350.00" in html  # Acme's share of the projected revenue
    charts = figures(html)
    assert set(charts) == {"revenue-by-period", "client-status", "revenue-by-source", "avg-revenue"}
    revenue = charts["revenue-by-period"]["data"][0]
    assert revenue["x"][-1] == LAST and revenue["y"][-1] == 340.0 and len(revenue["x"]) == 12
    assert sorted(charts["client-status"]["data"][0]["labels"]) == ["At commit", "Mixed", "Under commit"]
    assert charts["revenue-by-source"]["data"][0]["y"] == ["vcenter", "netapp"]
    assert "Health" in html and "Last billing:" in html and "Last projection:" in html
    assert "/static/vendor/plotly.min.js" in html and "cdn" not in html.lower()


def test_dashboard_empty(viewer_client):
    html = viewer_client.get("/admin/").get_data(as_text=True)
    assert html.count("No billing history") == 2
    assert html.count("No projections") == 3  # top clients, client status, revenue by source type
    assert "No new overages" in html and figures(html) == {}
    for label in ("Clients", "Assets", "Buckets", "Unassigned Assets", "Unbound Assets", "New Assets",
                  "Projected Rev", "MoM Rev"):
        assert f'<div class="text-muted small">{label}</div>' in html


def test_dashboard_tiles_link_to_their_grids(viewer_client):
    html = viewer_client.get("/admin/").get_data(as_text=True)
    for url in ("/admin/client/", "/admin/asset/", "/admin/bucket/", "/admin/assets/unassigned/",
                "/admin/assets/unbound/", "/admin/assets/new/", "/admin/projection/", "/admin/billingreading/"):
        assert f'href="{url}"' in html


def test_plotly_is_served_by_the_app(client):
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200 and b"plotly" in response.data[:2000].lower()
    assert response.mimetype == "text/javascript"


@pytest.mark.parametrize("role_client", ["admin_client", "viewer_client"])
def test_over_under_with_data(request, provider, role_client):
    html = request.getfixturevalue(role_client).get("/admin/over-under/").get_data(as_text=True)
    for text in ("All Clients", "Over Commit", "Under Commit", "Mixed", "Both over and under buckets",
                 "Trend — Last 12 Periods", "Overage = $ billed above commit. Buffer = $ paid for unused capacity.",
                 "Right-Size Candidates — Top Under-Commit by $", "Unit type:", "Total buffer this period:",
                 "Clients paying for capacity they're not using. Surface these for commit-rightsizing "
                 "conversations before they discover it themselves.",
                 "Three lenses on renewal strategy:", "(Hover column headers for details.)", "Δ Units ⓘ",
                 "Overage $ ⓘ", "Buffer $ ⓘ", "Committed ($)", "Buffer ($)", "Buffer Units", "% Unused",
                 "vs Commit", "Final Cost"):
        assert text in html, text
    assert f'<option value="{LAST}" selected>' in html
    assert '<strong class="total-buffer">$45.00</strong>' in html
    trend = figures(html)["over-under-trend"]["data"]
    assert [t["name"] for t in trend] == ["Overage", "Buffer"] and trend[1]["y"][-1] == 45.0
    assert html.count('data-client-status=') == 3 and "120.0%" in html  # Acme: 240 / 200


def test_over_under_status_filter_and_empty_filter(provider, viewer_client):
    html = viewer_client.get("/admin/over-under/?status=under").get_data(as_text=True)
    assert re.findall(r'data-client-status="(\w+)"', html) == ["under"]
    html = viewer_client.get("/admin/over-under/?status=over").get_data(as_text=True)
    assert "No clients match this filter." in html


def test_over_under_unit_type_filter(provider, viewer_client):
    from extensions import db
    from models import UnitType

    with viewer_client.application.app_context():
        vm = db.session.query(UnitType).filter_by(name="vm-hours").one().id
    html = viewer_client.get(f"/admin/over-under/?unit_type={vm}").get_data(as_text=True)
    assert '<strong class="total-buffer">$20.00</strong>' in html and ">clear</a>" in html


def test_over_under_period_picker(provider, viewer_client):
    older = period_label(previous_period(previous_period(current_period_start(NOW))))
    html = viewer_client.get(f"/admin/over-under/?period={older}").get_data(as_text=True)
    assert f'<option value="{older}" selected>' in html
    assert re.findall(r'data-client-status="(\w+)"', html) == ["at", "over"]  # Acme at, Globex over
    html = viewer_client.get("/admin/over-under/?period=2001-01").get_data(as_text=True)
    assert "No billing readings found for this period." in html
    assert "period must be YYYY-MM" in viewer_client.get("/admin/over-under/?period=nope").get_data(as_text=True)


def test_over_under_empty(viewer_client):
    html = viewer_client.get("/admin/over-under/").get_data(as_text=True)
    assert "No billing readings found for this period." in html and "No billing history" in html


def test_over_under_is_in_the_billing_menu_after_projections(viewer_client):
    html = viewer_client.get("/admin/").get_data(as_text=True)
    assert html.index("/admin/projection/") < html.index("/admin/over-under/")
