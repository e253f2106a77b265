"""Links into the grids with one of their filters applied (filter arguments are found by label, not position)."""
from __future__ import annotations

from typing import Any

from flask import current_app, url_for


def grid_view(endpoint: str) -> Any:
    """The registered admin view of that endpoint."""
    for admin in current_app.extensions["admin"]:
        for view in admin._views:
            if view.endpoint == endpoint:
                return view
    raise LookupError(endpoint)


def filtered_url(endpoint: str, label: str, value: Any, operation: str = "equals") -> str:
    """`endpoint`'s list with the filter `label` `operation` `value` (e.g. Client equals Acme)."""
    view = grid_view(endpoint)
    for index, flt in enumerate(view._filters or ()):
        if str(flt.name) == label and str(flt.operation()) == operation:
            return url_for(f"{endpoint}.index_view", **{f"flt0_{view.get_filter_arg(index, flt)}": value})
    raise LookupError(f"{endpoint} has no filter {label} {operation}")
