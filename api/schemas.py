"""Request and response models of the JSON API: they validate requests and generate the OpenAPI document."""

from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from billing.amounts import non_negative_decimal
from ingest.batch import DECIMAL_IN_SCHEMA, MAX_ITEMS, ReadingIn, Text
from ingest.suppressions import check_glob
from models import AGGREGATIONS, MAX_GAP_LIMIT, SUPPRESSION_TYPES

DECIMAL_OUT_SCHEMA = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}


def amount(field: str) -> Any:
    """A money or quantity input: a finite number >= 0 given as a JSON number or a string (rule of billing/amounts.py)."""
    return Annotated[Decimal, BeforeValidator(partial(non_negative_decimal, field=field)),
                     WithJsonSchema(DECIMAL_IN_SCHEMA)]


DecimalOut = Annotated[str, WithJsonSchema(DECIMAL_OUT_SCHEMA)]
Glob = Annotated[str, Text(min_length=1, max_length=200), AfterValidator(check_glob)]
Aggregation = Literal[AGGREGATIONS]  # type: ignore[valid-type]
SuppressionType = Literal[SUPPRESSION_TYPES]  # type: ignore[valid-type]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadingsEnvelope(BaseModel):
    readings: list[ReadingIn] = Field(max_length=MAX_ITEMS)


class Rejected(BaseModel):
    index: int
    error: str


class IngestOut(BaseModel):
    accepted: int
    duplicates: int
    suppressed: int
    rejected: list[Rejected]


class ErrorOut(BaseModel):
    error: str
    fields: dict[str, str] | None = None


class JobStarted(BaseModel):
    job_id: int


# ---- records ---------------------------------------------------------------------------------

class ClientIn(Strict):
    name: Annotated[str, Text(min_length=1, max_length=200)]
    enabled: bool = True


class ClientPatch(Strict):
    name: Annotated[str, Text(min_length=1, max_length=200)] | None = None
    enabled: bool | None = None


class ClientOut(BaseModel):
    id: int
    name: str
    enabled: bool
    created_at: datetime


class UnitTypeIn(Strict):
    name: Annotated[str, Text(min_length=1, max_length=100)]
    description: Annotated[str, Text(max_length=10_000)] = ""
    aggregation: Aggregation = "sum"
    base_price: amount("base_price") = Decimal("0")
    overage_price: amount("overage_price") = Decimal("0")
    auto_provision: bool = False
    filter_pattern: Glob = "*"
    max_gap_minutes: int = Field(default=60, ge=1, le=MAX_GAP_LIMIT)
    silent_after_hours: int = Field(24, ge=1, le=8760)


class UnitTypePatch(Strict):
    name: Annotated[str, Text(min_length=1, max_length=100)] | None = None
    description: Annotated[str, Text(max_length=10_000)] | None = None
    aggregation: Aggregation | None = None
    base_price: amount("base_price") | None = None
    overage_price: amount("overage_price") | None = None
    auto_provision: bool | None = None
    filter_pattern: Glob | None = None
    max_gap_minutes: int | None = Field(default=None, ge=1, le=MAX_GAP_LIMIT)
    silent_after_hours: int | None = Field(None, ge=1, le=8760)


class UnitTypeOut(BaseModel):
    id: int
    name: str
    description: str
    aggregation: str
    base_price: DecimalOut
    overage_price: DecimalOut
    auto_provision: bool
    filter_pattern: str
    max_gap_minutes: int
    silent_after_hours: int


class BucketIn(Strict):
    client_id: int = Field(ge=1, le=2**31 - 1)
    name: Annotated[str, Text(min_length=1, max_length=200)]
    unit_type_id: int = Field(ge=1, le=2**31 - 1)
    source_type: Annotated[str, Text(min_length=1, max_length=100)]
    aggregation: Aggregation = "sum"
    commit: amount("commit") = Decimal("0")
    base_price: amount("base_price") = Decimal("0")
    overage_price: amount("overage_price") = Decimal("0")
    reviewed: bool = True
    enabled: bool = True
    asset_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(default_factory=list, max_length=10_000)


class BucketPatch(Strict):
    client_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    name: Annotated[str, Text(min_length=1, max_length=200)] | None = None
    unit_type_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    source_type: Annotated[str, Text(min_length=1, max_length=100)] | None = None
    aggregation: Aggregation | None = None
    commit: amount("commit") | None = None
    base_price: amount("base_price") | None = None
    overage_price: amount("overage_price") | None = None
    reviewed: bool | None = None
    enabled: bool | None = None
    asset_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(default=None, max_length=10_000)


class BucketOut(BaseModel):
    id: int
    client_id: int
    name: str
    unit_type_id: int
    source_type: str
    aggregation: str
    commit: DecimalOut
    base_price: DecimalOut
    overage_price: DecimalOut
    reviewed: bool
    enabled: bool
    created_at: datetime
    asset_ids: list[int]


class AssetIn(Strict):
    external_id: Annotated[str, Text(min_length=1, max_length=255)]
    source_type: Annotated[str, Text(min_length=1, max_length=100)]
    name: Annotated[str, Text(max_length=255)] = ""
    description: Annotated[str, Text(max_length=10_000)] = ""
    client_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    acknowledged: bool = False
    enabled: bool = True


class AssetPatch(Strict):
    name: Annotated[str, Text(max_length=255)] | None = None
    description: Annotated[str, Text(max_length=10_000)] | None = None
    client_id: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                  description="A client id; null makes the asset unassigned.")
    acknowledged: bool | None = None
    enabled: bool | None = None
    disregarded: bool | None = None


class AssetOut(BaseModel):
    id: int
    external_id: str
    source_type: str
    name: str
    description: str
    client_id: int | None
    acknowledged: bool
    enabled: bool
    disregarded: bool
    disregarded_at: datetime | None
    created_at: datetime
    last_seen_at: datetime | None


class SuppressionIn(Strict):
    pattern: Annotated[str, Text(min_length=1, max_length=500)]
    type: SuppressionType = "exact"
    reason: Annotated[str, Text(max_length=10_000)] = ""


class SuppressionPatch(Strict):
    pattern: Annotated[str, Text(min_length=1, max_length=500)] | None = None
    type: SuppressionType | None = None
    reason: Annotated[str, Text(max_length=10_000)] | None = None


class SuppressionOut(BaseModel):
    id: int
    pattern: str
    type: str
    reason: str
    created_at: datetime


# ---- reports ---------------------------------------------------------------------------------

class BillingRun(Strict):
    period: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}$")]
    finalize: bool = False


class BillingReadingOut(BaseModel):
    id: int
    client_id: int
    bucket_id: int
    period_start: datetime
    period_end: datetime
    total_usage: DecimalOut
    commit: DecimalOut
    base_price: DecimalOut
    overage_price: DecimalOut
    base_cost: DecimalOut
    overage_units: DecimalOut
    overage_cost: DecimalOut
    buffer_units: DecimalOut
    buffer_cost: DecimalOut
    final_cost: DecimalOut
    finalized: bool
    finalized_at: datetime | None
    calculated_at: datetime
    adjusts_period: str | None = Field(default=None, description="YYYY-MM: the finalized period this adjustment "
                                                                     "line bills late usage of; null on ordinary lines.")
    details: Any


class ProjectionOut(BaseModel):
    id: int
    client_id: int
    bucket_id: int
    period_start: datetime
    current_usage: DecimalOut
    projected_usage: DecimalOut
    projected_cost: DecimalOut
    pct_of_commit: DecimalOut | None
    calculated_at: datetime


class JobRunOut(BaseModel):
    id: int
    kind: str
    parameters: Any
    status: str
    progress: int
    message: str
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


# ---- contract terms, true-ups, late-usage adjustments ----------------------------------------------------------

Period = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


class BucketTermIn(Strict):
    effective_from: Period = Field(description="The first period (YYYY-MM) the term bills.")
    commit: amount("commit")
    base_price: amount("base_price")
    overage_price: amount("overage_price")
    note: Annotated[str, Text(max_length=10_000)] = ""


class BucketTermOut(BaseModel):
    id: int
    bucket_id: int
    effective_from: str = Field(description="YYYY-MM")
    commit: DecimalOut
    base_price: DecimalOut
    overage_price: DecimalOut
    note: str
    created_by: str
    created_at: datetime


class AdjustmentsRun(Strict):
    period: Period = Field(description="The finalized period (YYYY-MM) whose late usage is billed.")
    into: Period | None = Field(default=None, description="The open period (YYYY-MM) that gets the adjustment "
                                                          "lines; default the current month.")


class TrueUpOut(BaseModel):
    bucket_id: int
    client_id: int
    unit_type_id: int
    current_commit: DecimalOut
    suggested_commit: DecimalOut
    direction: Literal["up", "down"]
    usage_by_period: dict[str, DecimalOut] = Field(description="YYYY-MM -> billed usage, the last 3 billed periods.")
    monthly_effect: DecimalOut = Field(description="Final cost at the last period's usage under the suggested "
                                                   "commit minus under the current one.")
    applied_from: str | None = Field(description="YYYY-MM when the suggestion is already the next period's term.")


def page_of(model: type[BaseModel]) -> type[BaseModel]:
    """The `{"items": [...], "total": N}` envelope of a list endpoint."""
    return type(f"{model.__name__}Page", (BaseModel,), {
        "__annotations__": {"items": list[model], "total": int}, "__module__": __name__,
    })


class UnitTypeName(BaseModel):
    """A unit type as a non-admin key lists it (GET /unit-types): its name, what a collector posts."""

    name: str


class ReadingOut(BaseModel):
    asset_id: int
    external_id: str
    source: str
    unit_type_id: int
    unit_type: str
    ts: datetime
    value: DecimalOut
    received_at: datetime
