"""Headings and words as in the seed (issue 12 item 15): page headings, Period End as the last day, the billing
summary's totals row, unit prices at their real precision, "Last period" charts that name the month."""
import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from billing.periods import current_period_start, previous_period
from extensions import db
from models import UnitType
from views.charts import day_axis
from web.formatting import last_day, month_name, price


@pytest.mark.parametrize(("url", "heading"), [
    ("/admin/asset/", "Assets"), ("/admin/assets/unbound/", "Unbound Assets"), ("/admin/bucket/", "Billing Buckets"),
    ("/admin/assets/new/", "New Assets"), ("/admin/assets/unassigned/", "Unassigned Assets"),
    ("/admin/assets/disregarded/", "Disregarded Assets"), ("/admin/projection/", "Projections"),
])
def test_page_headings(viewer_client, url, heading):
    html = viewer_client.get(url).get_data(as_text=True)
    assert re.search(r'<h4 class="mb-4 page-heading">\s*' + re.escape(heading) + r"\s*</h4>", html)
    assert f"<title>{heading} - Meterdesk</title>" in html


@pytest.mark.parametrize(("value", "text"), [
    ("0.045", "$0.045"), ("0.5", "$0.50"), ("2", "$2.00"), ("0.000125", "$0.000125"), ("1234.5", "$1,234.50"),
    ("-0.045", "-$0.045"), ("0.0450000", "$0.045"),
])
def test_price_keeps_sub_cent_precision(value, text):
    assert price(Decimal(value)) == text


def test_last_day_and_month_name():
    assert last_day(datetime(2026, 12, 1, tzinfo=timezone.utc)) == "2026-11-30"
    assert last_day(datetime(2026, 3, 1, tzinfo=timezone.utc)) == "2026-02-28"
    assert month_name(datetime(2026, 10, 1, tzinfo=timezone.utc)) == "October 2026"


def test_unit_types_grid_shows_sub_cent_prices(app, viewer_client):
    with app.app_context():
        db.session.add(UnitType(name="api-calls", aggregation="sum", base_price=Decimal("0.045"),
                                overage_price=Decimal("0.0125")))
        db.session.commit()
    html = viewer_client.get("/admin/unittype/").get_data(as_text=True)
    assert "$0.045" in html and "$0.0125" in html and "$0.05" not in html


def test_billing_summary_has_a_totals_row_and_period_end_is_the_last_day(admin_client, provider):
    last = previous_period(current_period_start())
    html = admin_client.get(f"/admin/billingreading/?flt0_0={last:%Y-%m}").get_data(as_text=True)
    summary = html.split('client-summary">')[1].split("</table>")[0]
    end = last_day(current_period_start())
    # last period: Acme 140 + 100, Globex 50, Initech 50 -> 4 buckets, $340.00 (tests/reportdata.py)
    totals = summary.split("<tfoot>")[1]
    assert re.search(r"Total \(3 clients\)</td>\s*<td>[\d-]+</td>\s*<td>" + end + r"</td>\s*<td>4</td>\s*"
                     r"<td>\$340\.00</td>", totals)
    assert f"<td>{current_period_start():%Y-%m-%d}</td>" not in summary  # no exclusive end shown
    grid = html.split("model-list")[1]
    assert end in grid


def test_last_period_charts_name_the_month(viewer_client, provider):
    month = month_name(previous_period(current_period_start()))
    html = viewer_client.get("/admin/").get_data(as_text=True)
    assert f"Client Status — {month}" in html and f"Revenue by Source Type — {month}" in html
    assert "— Last Period" not in html


def test_one_day_series_gets_a_week_of_day_ticks():
    axis = day_axis(["2026-11-25"])
    assert axis["tickformat"] == "%b %-d" and axis["dtick"] == 86_400_000
    assert axis["range"] == ["2026-11-18 12:00", "2026-11-25 12:00"]
    assert "range" not in day_axis([f"2026-11-{d:02d}" for d in range(1, 26)])


def test_bucket_and_billing_line_details_show_sub_cent_prices(app, viewer_client):
    from tests import factories
    from tests.reportdata import add_line

    with app.app_context():
        bucket = factories.bucket("API", commit="1000", base="0.045", overage="0.0625")
        line = add_line(bucket, previous_period(current_period_start()), "1200")
        db.session.commit()
        bucket_id, line_id = bucket.id, line.id
    bucket_html = viewer_client.get(f"/admin/bucket/details/?id={bucket_id}").get_data(as_text=True)
    assert "$0.045" in bucket_html and "$0.0625" in bucket_html
    line_html = viewer_client.get(f"/admin/billingreading/details/?id={line_id}").get_data(as_text=True)
    # final cost: base 1000 × $0.045 = $45.00 + overage 200 × $0.0625 = $12.50
    assert "$0.045" in line_html and "$0.0625" in line_html and "$57.50" in line_html
