"""A batch of readings as collectors post it: the reading model, parsing and validating a body item by item, then
dropping suppressed assets and storing the rest (ingest/store.py) in one transaction. No Flask in here."""
import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter, \
    ValidationError, WithJsonSchema
from sqlalchemy import select
from sqlalchemy.orm import Session
from typing_extensions import NotRequired, TypedDict

from database import deadline
from database.partitions import archived_labels
from ingest.store import ArchivedMonthWritten, IngestResult, Kept, store_items
from ingest.suppressions import load_matcher
from models import UnitType, utcnow

MAX_ITEMS = 10_000
VALUE_LIMIT = Decimal("1e12")

DECIMAL_IN_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0, "maximum": 999999999999},
                               {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,6})?$"}]}
ISO_WITH_ZONE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})")
MAX_TIMESTAMP_LENGTH = 64


_CHECKED_STAMPS: set[str] = set()  # texts that passed: a collector's batch repeats one timestamp 1,000 times
CHECKED_STAMPS_MAX = 4096


def _iso_with_zone(value: Any) -> Any:
    """Only a date and time written `YYYY-MM-DDThh:mm[:ss[.fff]]` with a zone (`Z`, `±hh:mm` or `±hhmm`): never a
    number or a numeric string, which pydantic would otherwise read as seconds since 1970."""
    if type(value) is str and value in _CHECKED_STAMPS:
        return value
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP_LENGTH or not ISO_WITH_ZONE.fullmatch(value):
        raise ValueError("must be an ISO 8601 date and time with a timezone (Z or ±hh:mm), e.g. 2026-11-01T10:00:00Z")
    if len(_CHECKED_STAMPS) >= CHECKED_STAMPS_MAX:
        _CHECKED_STAMPS.clear()
    _CHECKED_STAMPS.add(value)
    return value


NO_NUL = r"^[^\x00]*$"
Text = partial(StringConstraints, strip_whitespace=True, pattern=NO_NUL)
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_with_zone)]


class ReadingIn(TypedDict):
    """One usage reading as a collector posts it (validated into a plain dict: ingest is hot)."""

    __pydantic_config__ = ConfigDict(extra="ignore")  # type: ignore[misc]
    asset_id: Annotated[str, Text(min_length=1, max_length=255), Field(description="The asset's external id.")]
    source: Annotated[str, Text(min_length=1, max_length=100), Field(description="The asset's source type.")]
    unit_type: Annotated[str, Text(min_length=1, max_length=100), Field(description="A unit type name.")]
    value: Annotated[Decimal, Field(ge=0, lt=VALUE_LIMIT, allow_inf_nan=False), WithJsonSchema(DECIMAL_IN_SCHEMA)]
    timestamp: Annotated[Timestamp, Field(description="ISO 8601 with a zone, at most 5 minutes in the future.")]
    name: NotRequired[Annotated[str, Text(max_length=255)] | None]
    description: NotRequired[Annotated[str, Text(max_length=10_000)] | None]


ITEMS = TypeAdapter(list[ReadingIn])
FUTURE_SLACK = timedelta(minutes=5)
MIN_YEAR, MAX_YEAR = 2, 9998


def _reason(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"][1:])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def validate_items(items: Sequence[Any]) -> tuple[list[tuple[int, ReadingIn]], list[dict[str, Any]]]:
    """Parse every item; return the valid ones with their index and the rejected ones with a reason."""
    try:
        return list(enumerate(ITEMS.validate_python(items))), []
    except ValidationError as exc:
        reasons: dict[int, str] = {}
        for error in exc.errors(include_url=False, include_context=False, include_input=False):
            index = error["loc"][0] if error["loc"] else 0
            if isinstance(index, int):
                reasons.setdefault(index, _reason(error))
    good = [i for i in range(len(items)) if i not in reasons]
    parsed = ITEMS.validate_python([items[i] for i in good]) if good else []
    return list(zip(good, parsed)), [{"index": i, "error": e} for i, e in reasons.items()]


class BadBatch(ValueError):
    """A body that is not a batch of readings: `status` 400 (not such JSON) or 413 (too many items)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _items_of(data: Any) -> list[Any]:
    if isinstance(data, dict) and set(data) == {"readings"}:
        data = data["readings"]
    if not isinstance(data, list):
        raise BadBatch(400, 'the body must be a JSON list of readings or {"readings": [...]}')
    _check_size(len(data))
    return data


def _check_size(count: int) -> None:
    if count > MAX_ITEMS:
        raise BadBatch(413, f"at most {MAX_ITEMS:,} readings per request; got {count:,}")


TIMESTAMP = TypeAdapter(Timestamp)
_PARSED_STAMPS: dict[str, datetime] = {}  # timestamp text -> its datetime: a collector's batch shares one


def _plain_text(value: Any, longest: int) -> bool:
    """Text the schema takes unchanged: no whitespace to strip at either end (printable ASCII there), no NUL."""
    return (type(value) is str and 0 < len(value) <= longest and "!" <= value[0] <= "~" and "!" <= value[-1] <= "~"
            and "\x00" not in value)


def _plain_optional(item: dict, name: str, longest: int) -> bool:
    value = item.get(name)
    return value is None or value == "" or _plain_text(value, longest)


def _stamp(text: Any) -> datetime | None:
    """The timestamp text as the schema reads it, or None when the schema refuses it."""
    if type(text) is not str:
        return None
    moment = _PARSED_STAMPS.get(text)
    if moment is None:
        try:
            moment = TIMESTAMP.validate_python(text)
        except ValidationError:
            return None
        if len(_PARSED_STAMPS) >= CHECKED_STAMPS_MAX:
            _PARSED_STAMPS.clear()
        _PARSED_STAMPS[text] = moment
    return moment


def plain_items(items: Sequence[Any]) -> list[ReadingIn] | None:
    """The items as `ITEMS` would validate them, when every one is plain (objects of untrimmed-free text, a Decimal
    value in range, a valid timestamp); None as soon as one is not, for the schema to judge item by item.

    One pass of plain Python over what `json.loads` made, the timestamp parsed once per distinct text: the schema's
    own validation of a 1,000-item batch cost more than parsing its JSON."""
    out: list[ReadingIn] = []
    append = out.append
    for item in items:
        if type(item) is not dict:
            return None
        asset_id, source, unit_type = item.get("asset_id"), item.get("source"), item.get("unit_type")
        value = item.get("value")
        if not (_plain_text(asset_id, 255) and _plain_text(source, 100) and _plain_text(unit_type, 100)
                and type(value) is Decimal and value.is_finite() and 0 <= value < VALUE_LIMIT):
            return None
        moment = _stamp(item.get("timestamp"))
        if moment is None:
            return None
        reading: ReadingIn = {"asset_id": asset_id, "source": source, "unit_type": unit_type, "value": value,
                              "timestamp": moment}
        if "name" in item:
            if not _plain_optional(item, "name", 255):
                return None
            reading["name"] = item["name"]
        if "description" in item:
            if not _plain_optional(item, "description", 10_000):
                return None
            reading["description"] = item["description"]
        append(reading)
    return out


def parse_batch(raw: bytes) -> tuple[list[tuple[int, ReadingIn]], list[dict[str, Any]]]:
    """Parse a request body into valid items (with their index) and rejected ones; raises BadBatch.

    JSON numbers are read as Decimal, exactly and with no digit limit (a double holds 15 digits: 123456789012.123456
    must not become 123456789012.12346), so a 5,000-digit value is one rejected item, not a bad body; NaN and
    Infinity are read too, and rejected item by item. A batch of plain items (`plain_items`, a collector's usual
    batch) is taken in one pass; any other goes through the schema item by item, each fault with its reason."""
    try:
        data = json.loads(raw, parse_int=Decimal, parse_float=Decimal)
    except RecursionError:
        raise BadBatch(400, "the body must be JSON nested less deeply") from None
    except ValueError:
        raise BadBatch(400, "the body must be JSON") from None
    items = _items_of(data)
    plain = plain_items(items)
    if plain is not None:
        return list(enumerate(plain)), []
    return validate_items(items)


def ingest_body(session: Session, raw: bytes, client_id: int | None = None, now: datetime | None = None
                ) -> IngestResult:
    """Parse, validate and store a request body of readings; commits. Raises BadBatch for a bad body."""
    valid, rejected = parse_batch(raw)
    return _ingest_valid(session, valid, rejected, client_id, now)


def _ingest_valid(session: Session, valid: list[tuple[int, ReadingIn]], rejected: list[dict[str, Any]],
                  client_id: int | None, now: datetime | None) -> IngestResult:
    """Validate against the database and store; again from the start when a month was archived meanwhile."""
    while True:
        try:
            return _ingest_checked(session, valid, list(rejected), client_id, now)
        except ArchivedMonthWritten:
            session.rollback()


def _archived(ts: datetime, archived: set[str]) -> str | None:
    label = f"{ts.astimezone(timezone.utc):%Y-%m}"
    return label if label in archived else None


def _ingest_checked(session: Session, valid: list[tuple[int, ReadingIn]], rejected: list[dict[str, Any]],
                    client_id: int | None, now: datetime | None) -> IngestResult:
    deadline.check()
    now = now or utcnow()
    unit_ids = dict(session.execute(select(UnitType.name, UnitType.id)).all())
    archived = archived_labels(session)
    latest = now + FUTURE_SLACK
    kept: list[Kept] = []
    for index, item in valid:
        ts = item["timestamp"]
        if not MIN_YEAR <= ts.year <= MAX_YEAR:
            rejected.append({"index": index, "error": f"timestamp: year must be {MIN_YEAR} to {MAX_YEAR}"})
        elif ts > latest:
            rejected.append({"index": index, "error": "timestamp: is more than 5 minutes in the future"})
        elif archived and (month := _archived(ts, archived)):
            rejected.append({"index": index, "error": f"timestamp: {month} is archived (its readings were moved to "
                                                      "a file); readings for it are no longer accepted"})
        elif (unit_id := unit_ids.get(item["unit_type"])) is None:
            rejected.append({"index": index, "error": f"unit_type: unknown unit type {item['unit_type']!r}"})
        else:
            kept.append((index, (item["asset_id"], item["source"]), unit_id, ts, item["value"], item))
    is_suppressed = load_matcher(session)
    dropped = {external_id for external_id in {k[1][0] for k in kept} if is_suppressed(external_id)}
    if dropped:
        before = len(kept)
        kept = [k for k in kept if k[1][0] not in dropped]
        suppressed = before - len(kept)
    else:
        suppressed = 0

    deadline.check()
    result = store_items(session, kept, client_id, now)
    result.suppressed = suppressed
    result.rejected = rejected + result.rejected
    return result


