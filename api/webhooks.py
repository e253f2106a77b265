"""Webhook records for admin keys (`/webhooks`, their delivery log); the secret appears only in the POST answer."""
from __future__ import annotations

from typing import Any

from flask import current_app, jsonify
from sqlalchemy import func, select

from api.blueprint import bp
from api.alert_schemas import WebhookCreated, WebhookDeliveryOut, WebhookIn, WebhookOut, WebhookPatch
from api.auth import api_auth, require_unscoped
from api.body import json_body, parse_model, query_int
from api.errors import ApiError
from api.records import MAX_ID, MAX_PER_PAGE
from extensions import db
from models import Webhook, WebhookDelivery
from webhooks.signing import new_secret, seal_secret


def webhook_json(hook: Webhook) -> dict[str, Any]:
    return WebhookOut(id=hook.id, url=hook.url, events=list(hook.events or []), enabled=hook.enabled,
                      created_at=hook.created_at).model_dump(mode="json")


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    return WebhookDeliveryOut(**{name: getattr(row, name) for name in WebhookDeliveryOut.model_fields}).model_dump(
        mode="json")


def _webhook(record_id: int) -> Webhook:
    require_unscoped("manage webhooks")
    hook = db.session.get(Webhook, record_id) if record_id <= MAX_ID else None
    if hook is None:
        raise ApiError(404, f"no webhook with id {record_id}")
    return hook


def _page(query, order, show):
    page = query_int("page", 1)
    per_page = query_int("per_page", 50, maximum=MAX_PER_PAGE)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = db.session.scalars(query.order_by(*order).offset((page - 1) * per_page).limit(per_page))
    return jsonify({"items": [show(row) for row in rows], "total": total})


@bp.get("/webhooks")
@api_auth("admin")
def webhooks_list():
    require_unscoped("manage webhooks")
    return _page(select(Webhook), (Webhook.id,), webhook_json)


@bp.post("/webhooks")
@api_auth("admin")
def webhooks_create():
    require_unscoped("manage webhooks")
    body = parse_model(WebhookIn, json_body())
    raw = new_secret()
    hook = Webhook(url=body.url, events=body.events, enabled=body.enabled,
                   secret=seal_secret(raw, current_app.config["SECRET_KEY"]))
    db.session.add(hook)
    db.session.commit()
    answer = jsonify(WebhookCreated(**webhook_json(hook), secret=raw).model_dump(mode="json"))
    answer.headers["Cache-Control"] = "no-store"
    return answer, 201


@bp.get("/webhooks/<int:record_id>")
@api_auth("admin")
def webhooks_read(record_id: int):
    return jsonify(webhook_json(_webhook(record_id)))


@bp.patch("/webhooks/<int:record_id>")
@api_auth("admin")
def webhooks_patch(record_id: int):
    hook = _webhook(record_id)
    body = parse_model(WebhookPatch, json_body())
    values = {name: getattr(body, name) for name in body.model_fields_set}
    nulls = {name: "must not be null" for name, value in values.items() if value is None}
    if nulls:
        raise ApiError(422, "invalid fields", nulls)
    for name, value in values.items():
        setattr(hook, name, value)
    db.session.commit()
    return jsonify(webhook_json(hook))


@bp.delete("/webhooks/<int:record_id>")
@api_auth("admin")
def webhooks_delete(record_id: int):
    db.session.delete(_webhook(record_id))
    db.session.commit()
    return "", 204


@bp.get("/webhooks/<int:record_id>/deliveries")
@api_auth("admin")
def webhooks_deliveries(record_id: int):
    hook = _webhook(record_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
    return _page(query, (WebhookDelivery.id.desc(),), delivery_json)
