"""The one-click form a grid row shows for its quick action (views/row_actions.py answers it)."""
from __future__ import annotations

from flask import request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from web.auth import can_edit


def row_button(action: str, record_id: int, label: str, title: str = "") -> Markup:
    """A small POST form for one row's action, back to the page it is on; nothing for a user who cannot write."""
    if not can_edit(current_user):
        return Markup("")
    return Markup(
        '<form method="post" action="{}" class="d-inline row-action row-action-{}">'
        '<input type="hidden" name="csrf_token" value="{}"><input type="hidden" name="next" value="{}">'
        '<button type="submit" class="btn btn-outline-secondary btn-xs py-0 px-1" title="{}">{}</button></form>'
    ).format(url_for("row_action." + action, record_id=record_id), action, generate_csrf(), request.full_path,
             title or label, label)
