"""The shared base of every admin page: login, roles, CSRF and the Meterdesk list look."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_admin.actions import action
from flask_admin.babel import lazy_gettext, ngettext
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import FilterConverter
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import TypeDecorator

from database.integrity import DeleteRefused
from extensions import db
from web.auth import can_edit, is_admin
from web.formatting import money, quantity, utc


class CsrfForm(FlaskForm):
    """Flask-WTF form (CSRF checked by CSRFProtect) that keeps the `_obj` Flask-Admin's validators need."""

    def __init__(self, formdata: Any = None, obj: Any = None, prefix: str = "", **kwargs: Any) -> None:
        self._obj = obj
        if formdata is None and request.method in ("POST", "PUT", "PATCH"):
            formdata = request.form
        super().__init__(formdata=formdata, obj=obj, prefix=prefix, **kwargs)


class AccessMixin:
    """Every page needs a login; viewers read; staff and admins write; `admin_only` pages need admin."""

    admin_only = False

    def is_accessible(self) -> bool:
        if not (current_user.is_authenticated and current_user.active):
            return False
        return is_admin(current_user) if self.admin_only else True

    def inaccessible_callback(self, name: str, **kwargs: Any):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)

    def _handle_view(self, name: str, **kwargs: Any):
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        if request.method not in ("GET", "HEAD", "OPTIONS") and not can_edit(current_user):
            abort(403)
        return None


class SecureView(AccessMixin, BaseView):
    """Base of custom (non-grid) admin pages."""


class HiddenView(SecureView):
    """Pages reached by links only (a client, an asset, a job's status): no menu entry, no index."""

    def is_visible(self) -> bool:
        return False

    @expose("/")
    def index(self):
        abort(404)


def fmt_money(attr: str):
    return lambda view, context, model, name: money(getattr(model, attr))


def fmt_quantity(attr: str):
    return lambda view, context, model, name: quantity(getattr(model, attr))


def fmt_time(attr: str):
    return lambda view, context, model, name: utc(getattr(model, attr))


def link(endpoint: str, text: Any, **values: Any) -> Markup:
    return Markup('<a href="{}">{}</a>').format(url_for(endpoint, **values), escape(text))


class TypeDecoratorFilterConverter(FilterConverter):
    """Filters for our TypeDecorator columns (UTC datetimes, micro-unit decimals) as for their storage type."""

    def convert(self, type_name: str, column: Any, name: str, **kwargs: Any):
        if isinstance(column.type, TypeDecorator):
            type_name = type(column.type.impl).__name__
        return super().convert(type_name, column, name, **kwargs)


class SecureModelView(AccessMixin, ModelView):
    """Base grid: declarative subclasses only set columns, filters, labels and form rules."""

    form_base_class = CsrfForm
    filter_converter = TypeDecoratorFilterConverter()
    list_template = "meterdesk/list.html"
    page_size = 50
    can_set_page_size = True
    can_view_details = True
    can_export = False
    export_max_rows = 10000
    empty_message = "No records"
    intro = ""
    allow_create = True
    allow_edit = True
    allow_delete = True

    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, db, **kwargs)

    @property
    def can_create(self) -> bool:
        return self.allow_create and can_edit(current_user)

    @property
    def can_edit(self) -> bool:
        return self.allow_edit and can_edit(current_user)

    @property
    def can_delete(self) -> bool:
        return self.allow_delete and can_edit(current_user)

    def get_empty_list_message(self) -> str:
        return self.empty_message

    def handle_view_exception(self, exc: Exception) -> bool:
        """A refused delete (integrity.py) is flashed as it is; Flask-Admin then rolls back."""
        if isinstance(exc, DeleteRefused):
            flash(str(exc), "error")
            return True
        return super().handle_view_exception(exc)

    @action("delete", lazy_gettext("Delete"), lazy_gettext("Are you sure you want to delete selected records?"))
    def action_delete(self, ids: list[str]) -> None:
        """Bulk delete in one transaction: every selected record goes, or (one refused) none does.

        Ids are matched as integers (Flask-Admin's own query compares them as text, which PostgreSQL refuses)."""
        wanted = [int(i) for i in ids if str(i).isdigit()]
        records = self.get_query().filter(self.model.id.in_(wanted)).all()
        try:
            for record in records:
                self.on_model_delete(record)
                db.session.delete(record)
            db.session.commit()
        except Exception as exc:
            db.session.rollback()
            if not self.handle_view_exception(exc):
                raise
            return
        for record in records:
            self.after_model_delete(record)
        flash(ngettext("Record was successfully deleted.", "%(count)s records were successfully deleted.",
                       len(records), count=len(records)), "success")
