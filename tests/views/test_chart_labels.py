"""Names reach Plotly charts as text: markup in a client, unit-type or source name is never drawn as a link.

Plotly draws a subset of HTML (`<a href>`, `<b>`, `<br>`…) in names, ticks, legends, annotations and hover text, and
shows `&lt;` `&gt;` `&amp;` as the characters; views/charts.figure_json writes every label that way.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import update

from extensions import db
from ingest.store import NewReading, store_readings
from models import Asset, Bucket, Client, UnitType
from tests.conftest import PASSWORD, AuthActions, make_user
from tests.livesrv import browser_page, live_server, login

CLIENT = '<a href="https://evil.example/client">x</a>'
UNIT = '<a href="https://evil.example/unit">vm-hours</a>'
SOURCE = '<a href="https://evil.example/source">vcenter</a>'
TEMPLATE_KEYS = {"hovertemplate", "texttemplate"}


def entities(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.fixture
def hostile(app, provider) -> dict[str, int]:
    """tests/reportdata.py's provider with Acme, the vm-hours unit type and the vcenter source named as links, and an
    Acme asset reporting vm-hours on the last 5 days (its usage chart)."""
    make_user(app, "admin")
    now = datetime.now(timezone.utc)
    with app.app_context():
        db.session.execute(update(Client).where(Client.id == provider["acme"]).values(name=CLIENT))
        db.session.execute(update(UnitType).where(UnitType.id == provider["vm"]).values(name=UNIT))
        db.session.execute(update(Bucket).where(Bucket.source_type == "vcenter").values(source_type=SOURCE))
        vm = Asset(external_id="vm-7", source_type=SOURCE, client_id=provider["acme"], acknowledged=True)
        db.session.add(vm)
        db.session.flush()
        store_readings(db.session, [NewReading(vm.id, provider["vm"], now - timedelta(days=d), Decimal(d))
                                    for d in range(1, 6)])
        db.session.commit()
        return {**provider, "asset": vm.id}


def inline_figures(html: str) -> list[dict]:
    blocks = re.findall(r'<div class="chart"[^>]*data-figure><script type="application/json">(.*?)</script>', html)
    return [json.loads(block) for block in blocks]


def texts(value, key: str | None = None):
    """(key, string) for every string in a figure."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from texts(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item, key)


def test_figure_json_carries_every_name_as_text_never_as_markup(app, hostile):
    browser = app.test_client()
    assert AuthActions(browser).login("admin@example.com").status_code == 302
    figures = {}
    for name, url in (("dashboard", "/admin/"), ("client", f"/admin/clients/{hostile['acme']}"),
                      ("over-under", "/admin/over-under/")):
        page = browser.get(url)
        assert page.status_code == 200
        figures[name] = inline_figures(page.get_data(as_text=True))
    usage = browser.get(f"/admin/assets/page/{hostile['asset']}/usage.json")
    assert usage.status_code == 200
    figures["asset"] = [usage.get_json()["figure"]]
    assert [len(found) for found in figures.values()] == [4, 1, 1, 1]

    strings = [(key, text) for found in figures.values() for figure in found for key, text in texts(figure)]
    labels = [text for key, text in strings if key not in TEMPLATE_KEYS]
    assert [text for text in labels if "<" in text or ">" in text] == []
    # templates are constants: no name is ever pasted into one
    assert [text for key, text in strings if key in TEMPLATE_KEYS and "evil.example" in text] == []
    # the names are there, written as entities (Plotly shows them as typed)
    source_chart = figures["dashboard"][2]
    assert entities(SOURCE) in source_chart["data"][0]["y"]
    asset_chart = figures["asset"][0]
    assert asset_chart["data"][0]["name"] == entities(UNIT)
    assert [note["text"] for note in asset_chart["layout"]["annotations"]] == [entities(UNIT)]
    assert not any(CLIENT in text for text in labels)


@pytest.mark.browser
def test_charts_draw_names_as_text_and_no_link_of_theirs(app, hostile):
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "admin@example.com", PASSWORD)
        page.goto(f"{base}/admin/")
        page.locator(".plot-container").nth(3).wait_for(state="attached", timeout=15000)
        source = page.locator("#chart-revenue-by-source")
        assert SOURCE in source.inner_text()
        page.goto(f"{base}/admin/assets/page/{hostile['asset']}")
        chart = page.locator(".asset-usage")
        chart.locator(".plot-container").wait_for(state="attached", timeout=15000)
        assert UNIT in chart.inner_text()
        chart.locator(".scatterlayer .point").first.hover(force=True)
        page.wait_for_function("() => document.querySelector('.hoverlayer').textContent.includes('vm-hours')",
                               timeout=5000)
        assert UNIT in page.locator(".hoverlayer").text_content()
        for url in (f"{base}/admin/", f"{base}/admin/assets/page/{hostile['asset']}",
                    f"{base}/admin/clients/{hostile['acme']}", f"{base}/admin/over-under/"):
            page.goto(url)
            page.locator(".plot-container").first.wait_for(state="attached", timeout=15000)
            links = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot svg a'))
                .map(a => a.getAttribute('href') || a.getAttribute('xlink:href') || '')""")
            assert [href for href in links if "evil.example" in href] == [], url
        assert page.console_errors == [] and page.foreign_requests == []
