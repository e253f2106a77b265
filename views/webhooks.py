"""Settings ▾ Webhooks (admins only): endpoints, their events and a signing secret shown once; the delivery log."""
from __future__ import annotations

from flask import current_app, flash, g, make_response, request
from flask_admin import expose
from flask_admin.actions import action
from markupsafe import Markup
from sqlalchemy import inspect, select
from wtforms import SelectMultipleField
from wtforms.validators import DataRequired, ValidationError
from wtforms.widgets import CheckboxInput

from database.audit import audit_rows
from extensions import db
from jobs.webhooks import redeliver, send_test_event
from models import WEBHOOK_EVENTS, Webhook, WebhookDelivery
from views.forms import form_check
from views.base import SecureModelView, fmt_time, link
from webhooks.signing import new_secret, seal_secret
from webhooks.urls import MAX_URL_LENGTH, check_webhook_url

QUEUE_DOWN = "The job queue is unavailable; try again shortly."


def checkbox_list(field, **kwargs) -> Markup:
    """Each choice as a Bootstrap 4 checkbox row (WTForms' ListWidget draws a bare list the admin CSS overlaps)."""
    rows = []
    for option in field:
        rows.append(Markup('<div class="form-check">{} {}</div>').format(
            option(class_="form-check-input"), option.label(class_="form-check-label")))
    return Markup('<div class="event-types pt-1">{}</div>').format(Markup("").join(rows))


class CheckboxesField(SelectMultipleField):
    widget = staticmethod(checkbox_list)
    option_widget = CheckboxInput()


def at_least_one(form, field) -> None:
    if not field.data:
        raise ValidationError("Choose at least one event.")


def events_text(view, context, model, name) -> Markup:
    return Markup("<br>").join(Markup("<code>{}</code>").format(e) for e in (model.events or []))


def deliveries_link(view, context, model, name) -> Markup:
    return link("webhookdelivery.index_view", "Deliveries", flt0_0=model.id)


def seal(secret: str) -> str:
    return seal_secret(secret, current_app.config["SECRET_KEY"])


class WebhookView(SecureModelView):
    admin_only = True
    column_list = ("id", "url", "events", "enabled", "created_at", "deliveries")
    column_labels = {"id": "ID", "url": "URL", "created_at": "Created", "deliveries": "Delivery Log"}
    column_details_list = ("id", "url", "events", "enabled", "created_at")
    column_searchable_list = ("url",)
    column_filters = ("enabled",)
    column_sortable_list = ("id", "url", "enabled", "created_at")
    column_formatters = {"events": events_text, "created_at": fmt_time("created_at"), "deliveries": deliveries_link}
    column_formatters_detail = {"events": events_text, "created_at": fmt_time("created_at")}
    form_columns = ("url", "event_types", "enabled")
    form_extra_fields = {"event_types": CheckboxesField(
        "Events", choices=[(e, e) for e in WEBHOOK_EVENTS], validators=[at_least_one],
        description="silent, anomaly and projected-over events fire once per episode (again only after the "
                    "condition cleared).")}
    form_args = {"url": {"label": "URL", "validators": [DataRequired(), form_check(check_webhook_url)],
                         "description": f"http:// or https:// (at most {MAX_URL_LENGTH} characters). Each event is "
                                        "POSTed as JSON and signed: the X-Meterdesk-Signature header holds sha256= and "
                                        "the hex HMAC-SHA256 of the raw body with the webhook's secret."}}
    empty_message = "No webhooks"
    intro = ("Meterdesk POSTs events to these URLs from the job queue: 10 s timeout, up to 5 tries within about an "
             "hour, every attempt in the delivery log. The signing secret is shown once, when the webhook is made.")

    def __init__(self) -> None:
        super().__init__(Webhook, name="Webhooks", endpoint="webhook", category="Settings")

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if request.method == "GET" and obj is not None:
            form.event_types.data = list(obj.events or [])
        return form

    def on_model_change(self, form, model: Webhook, is_created: bool) -> None:
        model.url = check_webhook_url(model.url)
        model.events = [e for e in WEBHOOK_EVENTS if e in (form.event_types.data or [])]
        if is_created:
            raw = new_secret()
            model.secret = seal(raw)
            g.new_webhook_secret = (model, raw)

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """A new webhook's secret is shown on this response only (never flashed, never kept in clear)."""
        response = super().create_view()
        hook, raw = g.pop("new_webhook_secret", (None, None))
        if hook is None or not inspect(hook).persistent:
            return response
        return self._secret_page(hook, raw, "Webhook created")

    def _secret_page(self, hook: Webhook, raw: str, title: str):
        page = make_response(self.render("meterdesk/webhook_secret.html", hook=hook, raw=raw, title=title))
        page.headers["Cache-Control"] = "no-store"
        return page

    @action("test", "Send test event", "Send a webhook.test event to the selected webhooks?")
    def action_test(self, ids: list[str]) -> None:
        hooks = db.session.scalars(select(Webhook).where(Webhook.id.in_([int(i) for i in ids if i.isdigit()]))).all()
        sent, waiting = [], 0
        for hook in hooks:
            event, queued = send_test_event(db.session, hook)
            sent.append((hook.id, None, {"event_id": event.id, "event_type": event.type}))
            waiting += not queued
        audit_rows(db.session, "test_event", "webhooks", sent)
        db.session.commit()
        if waiting:
            flash(f"Test event recorded; {QUEUE_DOWN[0].lower()}{QUEUE_DOWN[1:]}", "warning")
        elif sent:
            flash(f"Test event queued for {len(sent)} webhook(s): see the delivery log.", "success")

    @action("rotate", "New secret", "Make a new signing secret for the selected webhook? The old one stops working.")
    def action_rotate(self, ids: list[str]):
        wanted = [int(i) for i in ids if i.isdigit()]
        if len(wanted) != 1:
            flash("Choose exactly one webhook to give a new secret.", "error")
            return None
        hook = db.session.get(Webhook, wanted[0])
        if hook is None:
            flash("No such webhook.", "error")
            return None
        raw = new_secret()
        hook.secret = seal(raw)
        db.session.commit()
        return self._secret_page(hook, raw, "New webhook secret")


def status_badge(view, context, model, name) -> Markup:
    if model.status_code is None:
        return Markup('<span class="badge badge-danger">no answer</span>')
    css = "success" if model.succeeded else "danger"
    return Markup('<span class="badge badge-{}">{}</span>').format(css, model.status_code)


class WebhookDeliveryView(SecureModelView):
    """Every delivery attempt, newest first; reached from a webhook's "Deliveries" link."""

    admin_only = True
    allow_create = allow_edit = allow_delete = False
    can_view_details = False
    column_display_actions = False
    column_list = ("created_at", "webhook", "event_type", "event_id", "attempt", "status_code", "duration_ms",
                   "error")
    column_labels = {"created_at": "Time", "webhook": "Webhook", "event_type": "Event", "event_id": "Event ID",
                     "status_code": "Status Code", "duration_ms": "Duration (ms)", "webhook.id": "Webhook ID"}
    column_filters = ("webhook.id", "event_type", "status_code", "event_id")
    column_sortable_list = ("created_at", "event_type", "attempt", "status_code", "duration_ms")
    column_default_sort = ("id", True)
    column_select_related_list = (WebhookDelivery.webhook,)
    column_formatters = {"created_at": fmt_time("created_at"), "status_code": status_badge,
                         "webhook": lambda v, c, m, n: link("webhook.edit_view", m.webhook.url, id=m.webhook_id)}
    empty_message = "No deliveries yet"
    intro = ("Every attempt to deliver an event: status code, duration and error. Redeliver sends the chosen events "
             "again (signed anew), even when an earlier attempt succeeded.")

    def __init__(self) -> None:
        super().__init__(WebhookDelivery, name="Webhook Deliveries", endpoint="webhookdelivery",
                         url="/admin/webhooks/deliveries")

    def is_visible(self) -> bool:
        return False

    @action("redeliver", "Redeliver", "Send the events of the selected deliveries again?")
    def action_redeliver(self, ids: list[str]) -> None:
        wanted = [int(i) for i in ids if i.isdigit()]
        pairs = sorted(set(db.session.execute(select(WebhookDelivery.webhook_id, WebhookDelivery.event_id)
                                              .where(WebhookDelivery.id.in_(wanted))).all()))
        queued = []
        try:
            for webhook_id, event_id in pairs:
                redeliver(db.session, webhook_id, event_id)
                queued.append((webhook_id, None, {"event_id": event_id}))
        except Exception:  # noqa: BLE001 - Redis away
            current_app.logger.warning("redelivery not queued", exc_info=True)
            flash(QUEUE_DOWN, "error")
        audit_rows(db.session, "redeliver", "webhooks", queued)
        db.session.commit()
        if queued:
            flash(f"{len(queued)} event(s) queued for redelivery.", "success")

