"""The one-pass reading of a plain batch (ingest/batch.py `plain_items`) gives what the schema gives, or hands the
batch to the schema: checked on generated batches of plain and not-quite-plain items."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from ingest import batch as batch_module
from ingest.batch import ITEMS, parse_batch, plain_items, validate_items


@pytest.fixture(autouse=True)
def no_stamps_seen_yet():
    """Each test starts with the timestamp caches empty (a run in one process, as mutmut's, would fill them)."""
    batch_module._PARSED_STAMPS.clear()
    batch_module._CHECKED_STAMPS.clear()

TEXT = st.one_of(
    st.sampled_from(["vm-1", "a", "x" * 255, "x" * 256, " vm-1", "vm-1 ", "vm\x001", "", "é", "vm é", "\u00a0vm",
                     "vm\t", "vm\u00a0", "vm\x85", "vm\x1f", "~", "!"]),
    st.text(max_size=8), st.integers(0, 3), st.none(), st.booleans())
VALUE = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("999999999999.999999"), places=6),
    st.sampled_from([Decimal(0), Decimal("-0"), Decimal("1e12"), Decimal("999999999999.9999999"), Decimal("-1"),
                     Decimal("1E+999999"), Decimal("1E-999999"), Decimal("NaN"), Decimal("Infinity")]),
    st.sampled_from(["1.5", "x", 1.5, 2, True, None]))
STAMP = st.one_of(
    st.sampled_from(["2026-11-20T10:00:00Z", "2026-11-20T10:00:00+01:00", "2026-11-20 10:00:00.123456z",
                     "2026-11-20T10:00Z", "2026-11-20T10:00:00", "2026-02-30T10:00:00Z", "1700000000", "",
                     "2026-11-20T10:00:00,5+0530", "2026-11-20T24:00:00Z", " 2026-11-20T10:00:00Z"]),
    st.integers(), st.none())


PLAIN = st.fixed_dictionaries({
    "asset_id": st.from_regex(r"[!-~]([ -~]{0,20}[!-~])?", fullmatch=True),
    "source": st.sampled_from(["vmware", "aws", "m365"]),
    "unit_type": st.sampled_from(["cpu_hours", "storage_gb"]),
    "value": st.decimals(min_value=0, max_value=Decimal("999999999999.999999"), places=6),
    "timestamp": st.sampled_from(["2026-11-20T10:00:00Z", "2026-11-20T10:05:00.5+02:00"]),
}, optional={"name": st.one_of(st.none(), st.just(""), st.text("abc ", min_size=1, max_size=5).map(lambda t: f"n{t}n")),
             "description": st.none()})


ODD = {"asset_id": TEXT, "source": TEXT, "unit_type": TEXT, "value": VALUE, "timestamp": STAMP, "name": TEXT,
       "description": TEXT, "extra": TEXT}


@st.composite
def almost_plain(draw):
    """A plain item with one field changed to anything (or dropped): the edge the one-pass reading must judge."""
    item = dict(draw(PLAIN))
    name = draw(st.sampled_from(sorted(ODD)))
    if draw(st.integers(0, 9)) == 0:
        item.pop(name, None)
    else:
        item[name] = draw(ODD[name])
    return item


@settings(max_examples=500)
@given(st.lists(PLAIN, max_size=3), st.one_of(almost_plain(), st.integers(), st.lists(st.none(), max_size=1)),
       st.integers(0, 3))
def test_a_batch_read_in_one_pass_equals_the_schemas_reading(batch, odd, where):
    batch.insert(where, odd)
    plain = plain_items(batch)
    if plain is not None:
        schema = ITEMS.validate_python(batch)
        assert plain == schema
        assert [type(r["timestamp"]) for r in plain] == [type(r["timestamp"]) for r in schema]


@settings(max_examples=100)
@given(st.lists(PLAIN, min_size=1, max_size=20))
def test_a_collectors_plain_batch_takes_the_one_pass_reading(batch):
    assert plain_items(batch) == ITEMS.validate_python(batch)


def test_what_is_not_plain_goes_to_the_schema_which_gives_each_fault_its_reason():
    good = {"asset_id": "vm-1", "source": "vmware", "unit_type": "cpu_hours", "value": Decimal("1.5"),
            "timestamp": "2026-11-20T10:00:00Z"}
    for odd in ({"asset_id": " vm-1"}, {"value": "1.5"}, {"value": Decimal("NaN")}, {"timestamp": 1700000000},
                {"name": " padded "}, {"value": Decimal("1e12")}, {"source": "vmware\u00a0"}, {"unit_type": "cpu\x00"}):
        assert plain_items([good, {**good, **odd}]) is None
    assert plain_items([good, {**good, "asset_id": " vm-2 "}]) is None
    valid, rejected = validate_items([good, {**good, "value": Decimal("1e12")}])
    assert [i for i, _ in valid] == [0]
    assert rejected == [{"index": 1, "error": "value: Input should be less than 1E+12"}]


def test_a_plain_batch_and_the_same_items_wrapped_read_the_same():
    batch = [{"asset_id": f"vm-{i}", "source": "vmware", "unit_type": "cpu_hours", "value": v,
              "timestamp": "2026-11-20T10:00:00Z", "name": "Web 1"} for i, v in enumerate([0.1, 1, 123456789012.5])]
    raw = json.dumps(batch).encode()
    assert parse_batch(raw) == parse_batch(b'{"readings": ' + raw + b"}")
    assert [item["value"] for _, item in parse_batch(raw)[0]] == [Decimal("0.1"), Decimal(1), Decimal("123456789012.5")]


def test_the_one_pass_takes_ids_up_to_their_limits_and_printable_edges_then_parses_each_stamp_once():
    items = [{"asset_id": "!" + "x" * 253 + "~", "source": "~" + "s" * 98 + "!", "unit_type": "u" * 100,
              "value": Decimal("999999999999.999999"), "timestamp": "2026-11-20T10:00:00Z", "name": "n" * 255,
              "description": "d" * 10_000},
             {"asset_id": "~", "source": "!", "unit_type": "!", "value": Decimal(0), "timestamp": "2026-11-20T10:00:00Z"}]
    plain = plain_items(items)
    assert plain == ITEMS.validate_python(items)
    assert plain[0]["timestamp"] is plain[1]["timestamp"]  # one datetime for the stamp the batch shares
    assert list(batch_module._PARSED_STAMPS) == ["2026-11-20T10:00:00Z"]
    for field, longest in (("asset_id", 255), ("source", 100), ("unit_type", 100), ("name", 255),
                           ("description", 10_000)):
        assert plain_items([{**items[1], field: "x" * (longest + 1)}]) is None, field
