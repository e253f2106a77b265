"""Usage anomalies: projected usage this period against the mean of the bucket's last 3 billed periods (ANOMALY_PCT,
and at least 1 unit)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from extensions import db
from reports.anomalies import anomalies, is_anomalous
from tests.api_helpers import bearer, make_key
from tests.webhooks.helpers import bucket, last_periods, line, owner, projection, unit


def anomaly_world() -> dict[str, int]:
    """Buckets with lines in the last periods and a projection this period (worked figures beside each)."""
    acme, beta = owner("Acme"), owner("Beta")
    gb = unit("gb")
    oct_, sep, aug, jul = last_periods(4)
    made = {}

    def make(name: str, usages: list[str], projected: str | None, client=acme, **fields) -> None:
        target = bucket(name, gb, [], client=client, **fields)
        for period, usage in zip((oct_, sep, aug, jul), usages):
            line(target, period, usage)
        if projected is not None:
            projection(target, projected)
        made[name] = target.id

    make("Up", ["120", "110", "100"], "170")        # mean 110; +60 > 55 (50 %): +54.55 %
    make("Within", ["120", "110", "100"], "160")    # mean 110; +50 <= 55: normal
    make("Down", ["120", "110", "100"], "40")       # mean 110; -70: -63.64 %
    make("Tiny", ["1"], "0.4")                      # one period, mean 1; -60 % but less than 1 unit: normal
    make("From zero", ["0"], "1", client=beta)      # mean 0; +1 unit: anomalous, no percentage
    make("Three only", ["10", "10", "10", "1000"], "10")  # the 4th period back does not count: mean 10, normal
    make("Disabled", ["120", "110", "100"], "500", enabled=False)  # disabled buckets are not watched
    make("Never billed", [], "500")                 # no billed period: no baseline
    make("Not projected", ["120", "110", "100"], None)
    db.session.commit()
    return made | {"acme": acme.id, "beta": beta.id}


def test_anomalies_are_far_from_the_mean_of_the_last_three_billed_periods(app):
    with app.app_context():
        ids = anomaly_world()
        found = anomalies(db.session, Decimal(50))
        assert [(a.bucket, a.projected_usage, a.baseline_usage, a.baseline_periods, a.pct_change) for a in found] == [
            ("From zero", Decimal("1.000000"), Decimal("0.000000"), 1, None),
            ("Down", Decimal("40.000000"), Decimal("110.000000"), 3, Decimal("-63.64")),
            ("Up", Decimal("170.000000"), Decimal("110.000000"), 3, Decimal("54.55")),
        ]
        assert [a.direction for a in found] == ["up", "down", "up"]
        assert [a.bucket_id for a in anomalies(db.session, Decimal(50), client_id=ids["beta"])] == [ids["From zero"]]
        assert [a.bucket for a in anomalies(db.session, Decimal(60))] == ["From zero", "Down"]
        assert anomalies(db.session, Decimal(50), bucket_id=ids["Within"]) == []


def test_the_threshold_is_strict_and_needs_a_whole_unit():
    assert not is_anomalous(Decimal(150), Decimal(100), Decimal(50))     # exactly 50 %: not more than 50 %
    assert is_anomalous(Decimal("150.000001"), Decimal(100), Decimal(50))
    assert not is_anomalous(Decimal("1.9"), Decimal("1"), Decimal(50))   # +90 % but 0.9 of a unit
    assert is_anomalous(Decimal("2"), Decimal("1"), Decimal(50))
    assert not is_anomalous(Decimal("0.5"), Decimal(0), Decimal(50))     # from zero: at least 1 unit
    assert not is_anomalous(Decimal(0), Decimal(0), Decimal(50))


def test_the_dashboard_lists_anomalies_with_their_figures_and_the_bucket_page_flags_them(app, viewer_client):
    with app.app_context():
        ids = anomaly_world()
    html = viewer_client.get("/admin/").get_data(as_text=True)
    table = html[html.index("Usage Anomalies This Period"):]
    table = table[:table.index("</table>")]
    assert "more than 50% and by at least 1 unit" in table
    assert table.count("<tr data-bucket-id") == 3
    up = table[table.index(f'data-bucket-id="{ids["Up"]}"'):]
    up = up[:up.index("</tr>")]
    assert ">170<" in up and ">110<" in up and "+54.55%" not in up and "+54.6%" in up
    assert f'href="/admin/bucket/details/?id={ids["Up"]}"' in up and f'href="/admin/clients/{ids["acme"]}"' in up
    assert "new usage" in table and "-63.6%" in table
    flagged = viewer_client.get(f"/admin/bucket/details/?id={ids['Up']}").get_data(as_text=True)
    assert "Usage anomaly:" in flagged and "mean of 110 over its last" in flagged and "+54.6%" in flagged
    normal = viewer_client.get(f"/admin/bucket/details/?id={ids['Within']}").get_data(as_text=True)
    assert "Usage anomaly:" not in normal and "Within" in normal
    client_page = viewer_client.get(f"/admin/clients/{ids['acme']}").get_data(as_text=True)
    assert "Usage anomalies this period" in client_page and "projected 170 gb against a mean of 110" in client_page


def test_no_anomalies_says_so(viewer_client):
    assert "No usage anomalies" in viewer_client.get("/admin/").get_data(as_text=True)


@pytest.mark.parametrize("pct, expected", [("50", 3), ("60", 2)])
def test_anomaly_pct_is_a_setting(settings, pct, expected, request):
    settings["ANOMALY_PCT"] = pct
    app = request.getfixturevalue("app")
    with app.app_context():
        anomaly_world()
    body = app.test_client().get("/api/v1/anomalies", headers=bearer(make_key(app, "readonly"))).get_json()
    assert body["total"] == expected


def test_the_api_lists_anomalies_and_a_scoped_key_its_clients_only(app):
    with app.app_context():
        ids = anomaly_world()
    api = app.test_client()
    body = api.get("/api/v1/anomalies", headers=bearer(make_key(app, "readonly"))).get_json()
    assert body["items"] == [
        {"bucket_id": ids["From zero"], "client_id": ids["beta"], "projected_usage": "1.000000",
         "baseline_usage": "0.000000", "baseline_periods": 1, "pct_change": None},
        {"bucket_id": ids["Down"], "client_id": ids["acme"], "projected_usage": "40.000000",
         "baseline_usage": "110.000000", "baseline_periods": 3, "pct_change": "-63.64"},
        {"bucket_id": ids["Up"], "client_id": ids["acme"], "projected_usage": "170.000000",
         "baseline_usage": "110.000000", "baseline_periods": 3, "pct_change": "54.55"},
    ]
    assert body["total"] == 3
    paged = api.get("/api/v1/anomalies?page=2&per_page=2", headers=bearer(make_key(app, "admin"))).get_json()
    assert [i["bucket_id"] for i in paged["items"]] == [ids["Up"]] and paged["total"] == 3
    scoped = bearer(make_key(app, "readonly", client_id=ids["beta"], name="beta"))
    assert [i["bucket_id"] for i in api.get("/api/v1/anomalies", headers=scoped).get_json()["items"]] == [
        ids["From zero"]]
    assert api.get(f"/api/v1/anomalies?client_id={ids['acme']}", headers=scoped).status_code == 403
