"""The OpenAPI paths and models of the webhook, silent-asset and anomaly endpoints (merged by api/openapi.py)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.alert_schemas import (
    AnomalyOut, SilentAssetOut, WebhookCreated, WebhookDeliveryOut, WebhookIn, WebhookOut, WebhookPatch,
)
from api.openapi_parts import CLIENT_ID, PAGING, RECORD_ID, _operation, _query, _ref
from api.schemas import page_of


def alert_models() -> list[type[BaseModel]]:
    return [WebhookIn, WebhookPatch, WebhookOut, WebhookCreated, page_of(WebhookOut), page_of(WebhookDeliveryOut),
            page_of(SilentAssetOut), page_of(AnomalyOut)]


def add_alert_paths(paths: dict[str, Any]) -> None:
    """Add the paths of api/webhooks.py and api/alerts.py to the document's `paths`."""
    admin, readers = ("admin",), ("admin", "readonly")
    client = [_query("client_id", CLIENT_ID, "Only this client's (a client-scoped key: always its own).")]
    paths["/api/v1/silent-assets"] = {"get": _operation(
        "Silent assets: bound to an enabled bucket, no reading of its unit type for silent_after_hours", 200,
        _ref(page_of(SilentAssetOut)), (), parameters=client + PAGING, roles=readers)}
    paths["/api/v1/anomalies"] = {"get": _operation(
        "Usage anomalies this period: projected usage far from the mean of the last 3 billed periods", 200,
        _ref(page_of(AnomalyOut)), (), parameters=client + PAGING, roles=readers)}
    paths["/api/v1/webhooks"] = {
        "get": _operation("List webhooks", 200, _ref(page_of(WebhookOut)), (), parameters=PAGING, roles=admin),
        "post": _operation("Create a webhook (the answer holds its signing secret, once)", 201, _ref(WebhookCreated),
                           (422,), body=_ref(WebhookIn), roles=admin),
    }
    paths["/api/v1/webhooks/{record_id}"] = {
        "parameters": [RECORD_ID],
        "get": _operation("Read a webhook", 200, _ref(WebhookOut), (404,), roles=admin),
        "patch": _operation("Change a webhook", 200, _ref(WebhookOut), (404, 422), body=_ref(WebhookPatch),
                            roles=admin),
        "delete": _operation("Delete a webhook and its delivery log", 204, None, (404,), roles=admin),
    }
    paths["/api/v1/webhooks/{record_id}/deliveries"] = {
        "parameters": [RECORD_ID],
        "get": _operation("A webhook's delivery attempts, newest first", 200, _ref(page_of(WebhookDeliveryOut)),
                          (404,), parameters=PAGING, roles=admin),
    }
