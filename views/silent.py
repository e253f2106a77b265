"""Assets ▾ Silent: bound assets whose collector stopped posting (revenue leaking quietly)."""
from __future__ import annotations

from flask import request
from flask_admin import expose

from extensions import db
from models import utcnow
from reports.silent import silent_assets, silent_count
from views.base import SecureView

PAGE_SIZE = 100


def page_number(text: str | None) -> int:
    """`?page=` as a page number from 1 (anything else is page 1)."""
    return int(text) if text and text.isdigit() and 0 < int(text) < 10**6 else 1


class SilentAssetView(SecureView):
    @expose("/")
    def index(self):
        now = utcnow()
        page = page_number(request.args.get("page"))
        total = silent_count(db.session, now)
        rows = silent_assets(db.session, now, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        pages = max(1, -(-total // PAGE_SIZE))
        return self.render("meterdesk/silent.html", rows=rows, total=total, page=page, pages=pages, now=now)
