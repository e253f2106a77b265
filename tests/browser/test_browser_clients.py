"""In a real browser: log in, open the Clients grid, create a client, see it in the list."""
import pytest

from tests.conftest import PASSWORD, make_user
from tests.livesrv import browser_page, live_server, login

pytestmark = pytest.mark.browser


def test_staff_creates_a_client_in_the_grid(app):
    make_user(app, "staff")
    with live_server(app) as base, browser_page(base) as page:
        login(page, base, "staff@example.com", PASSWORD)
        page.click("text=Clients")
        page.wait_for_url(f"{base}/admin/client/")
        assert page.locator("text=No clients").count() == 1
        page.click("a[href*='/admin/client/new/']")
        page.fill("input[name=name]", "Initech <Labs>")
        page.click("input[type=submit][value=Save]")
        page.wait_for_url(f"{base}/admin/client/**")
        row = page.locator("table tbody tr", has_text="Initech <Labs>")
        assert row.count() == 1
        assert page.locator(".pager-text").inner_text().startswith("1 records · page 1 of 1")
        assert page.console_errors == [] and page.foreign_requests == []
