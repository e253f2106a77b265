"""Request and response models of the webhook, silent-asset and anomaly endpoints (also in the OpenAPI document)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator

from api.schemas import DecimalOut, Strict, Text
from models import WEBHOOK_EVENTS
from webhooks.urls import MAX_URL_LENGTH, check_webhook_url

EventType = Literal[WEBHOOK_EVENTS]  # type: ignore[valid-type]
WebhookUrl = Annotated[str, Text(min_length=1, max_length=MAX_URL_LENGTH), AfterValidator(check_webhook_url)]
Events = Annotated[list[EventType], Field(min_length=1, max_length=len(WEBHOOK_EVENTS))]


def _unique_events(events: list[str] | None) -> list[str] | None:
    """The events in their documented order, each once."""
    return None if events is None else [e for e in WEBHOOK_EVENTS if e in events]


class WebhookIn(Strict):
    url: WebhookUrl
    events: Events
    enabled: bool = True

    _events = field_validator("events")(_unique_events)


class WebhookPatch(Strict):
    url: WebhookUrl | None = None
    events: Events | None = None
    enabled: bool | None = None

    _events = field_validator("events")(_unique_events)


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret, shown in this answer only.")


class WebhookDeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event_id: str
    event_type: str
    attempt: int
    status_code: int | None
    duration_ms: int
    error: str
    created_at: datetime


class SilentAssetOut(BaseModel):
    asset_id: int
    client_id: int | None
    unit_type_id: int
    last_ts: datetime
    hours_silent: DecimalOut


class AnomalyOut(BaseModel):
    bucket_id: int
    client_id: int
    projected_usage: DecimalOut
    baseline_usage: DecimalOut
    baseline_periods: int
    pct_change: DecimalOut | None = Field(description="null when the baseline is 0")
