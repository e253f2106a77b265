"""Readings by day (database/reading_days.py): billing from sealed days equals billing from the readings, whatever
the horizon, the window and the late readings that arrive after a day was sealed; the nightly seal, the recount,
the day boundaries, and (PostgreSQL) two late batches for the same day at once."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import select

from billing.usage import bucket_specs, bucket_usages, usage_for_specs
from database.reading_days import DAY, day_of, recount_days, seal_days, seal_ended_days, sealed_before, \
    sealed_window
from extensions import db
from ingest.batch import ingest_body
from models import Reading, ReadingDay, ReadingDaysSealed
from tests.conftest import empty_tables
from tests.factories import DEC, NOV, asset, bucket, client, readings, unit_type
from tests.reference import reference_usages

D = Decimal
UTC = timezone.utc


def day_rows() -> dict[tuple[int, int, str], tuple[int, Decimal, Decimal]]:
    return {(r.asset_id, r.unit_type_id, f"{r.day:%Y-%m-%d}"): (r.n, r.total, r.top)
            for r in db.session.scalars(select(ReadingDay))}


def test_a_day_holds_its_readings_from_midnight_to_the_last_microsecond_before_the_next(app):
    with app.app_context():
        gb = unit_type("gb")
        a = asset("a")
        readings(a, [("2026-11-01T00:00:00+00:00", "1"), ("2026-11-01T23:59:59.999999+00:00", "2"),
                     ("2026-11-02T00:00:00+00:00", "4"), ("2026-11-02T02:00:00+01:00", "8"),
                     ("2026-10-31T23:59:59.999999+00:00", "16")], unit=gb)
        db.session.commit()
        assert seal_days(db.session, datetime(2026, 11, 3, 12, tzinfo=UTC)) == 3
        assert sealed_before(db.session) == datetime(2026, 11, 3, tzinfo=UTC)
        assert day_rows() == {(a.id, gb.id, "2026-10-31"): (1, D(16), D(16)),
                              (a.id, gb.id, "2026-11-01"): (2, D(3), D(2)),
                              (a.id, gb.id, "2026-11-02"): (2, D(12), D(8))}


def test_sealing_starts_at_the_earliest_reading_goes_day_by_day_and_again_does_nothing(app):
    with app.app_context():
        a = asset("a")
        readings(a, [("2026-11-05T10:00:00+00:00", "1"), ("2026-11-07T10:00:00+00:00", "2")])
        db.session.commit()
        steps = []
        assert seal_days(db.session, datetime(2026, 11, 8, tzinfo=UTC), lambda p, m: steps.append((p, m))) == 3
        assert steps == [(0, "sealing 2026-11-05"), (33, "sealing 2026-11-06"), (66, "sealing 2026-11-07"),
                         (100, "3 day(s) sealed")]
        assert seal_days(db.session, datetime(2026, 11, 8, 23, tzinfo=UTC)) == 0
        assert seal_days(db.session, datetime(2026, 11, 7, tzinfo=UTC)) == 0
        assert sealed_before(db.session) == datetime(2026, 11, 8, tzinfo=UTC)
        assert sorted(day for _, _, day in day_rows()) == ["2026-11-05", "2026-11-07"]


def test_with_no_readings_the_horizon_is_set_and_later_readings_before_it_are_counted(app):
    with app.app_context():
        assert seal_days(db.session, datetime(2026, 11, 20, 6, tzinfo=UTC)) == 0
        assert sealed_before(db.session) == datetime(2026, 11, 20, tzinfo=UTC)
        a = asset("a")
        readings(a, [("2026-11-02T10:00:00+00:00", "1.5"), ("2026-11-02T11:00:00+00:00", "2.25"),
                     ("2026-11-20T00:00:00+00:00", "100")])
        db.session.commit()
        assert day_rows() == {(a.id, unit_type().id, "2026-11-02"): (2, D("3.75"), D("2.25"))}


def test_a_late_reading_posted_to_the_api_recounts_its_sealed_day_and_a_repeat_changes_nothing(app):
    with app.app_context():
        gb = unit_type("gb")
        a = asset("vm-1")
        readings(a, [("2026-11-02T10:00:00+00:00", "5")], unit=gb)
        db.session.commit()
        seal_days(db.session, datetime(2026, 11, 10, tzinfo=UTC))
        body = [{"asset_id": "vm-1", "source": "vm", "unit_type": "gb", "value": v, "timestamp": ts}
                for v, ts in (("7.5", "2026-11-02T23:59:59.999999Z"), ("1", "2026-11-09T00:00:00Z"),
                              ("2", "2026-11-12T00:00:00Z"))]
        now = datetime(2026, 11, 12, 1, tzinfo=UTC)
        assert ingest_body(db.session, json.dumps(body).encode(), now=now).accepted == 3
        expected = {(a.id, gb.id, "2026-11-02"): (2, D("12.5"), D("7.5")), (a.id, gb.id, "2026-11-09"): (1, D(1), D(1))}
        assert day_rows() == expected
        assert ingest_body(db.session, json.dumps(body[:1]).encode(), now=now).duplicates == 1
        assert day_rows() == expected


def test_recount_brings_a_sealed_day_back_to_its_readings_after_a_bulk_load(app):
    with app.app_context():
        a = asset("a")
        readings(a, [("2026-11-02T10:00:00+00:00", "5")])
        db.session.commit()
        seal_days(db.session, datetime(2026, 11, 4, tzinfo=UTC))
        db.session.add(Reading(asset_id=a.id, unit_type_id=unit_type().id, ts=datetime(2026, 11, 3, 5, tzinfo=UTC),
                               value=D(3)))  # written past the store, as a restored file is
        db.session.flush()
        assert recount_days(db.session, NOV, DEC) == 3  # Nov 1-3: the sealed days of the window
        assert day_rows() == {(a.id, unit_type().id, "2026-11-02"): (1, D(5), D(5)),
                              (a.id, unit_type().id, "2026-11-03"): (1, D(3), D(3))}


def test_the_sealed_window_is_the_whole_sealed_days_inside_the_window(app):
    with app.app_context():
        assert sealed_window(db.session, NOV, DEC) is None
        db.session.add(ReadingDaysSealed(id=1, before=datetime(2026, 11, 20, tzinfo=UTC)))
        db.session.flush()
        assert sealed_window(db.session, NOV, DEC) == (NOV, datetime(2026, 11, 20, tzinfo=UTC))
        assert sealed_window(db.session, NOV + timedelta(microseconds=1), NOV + timedelta(days=5, hours=3)) == (
            NOV + DAY, NOV + timedelta(days=5))
        assert sealed_window(db.session, NOV + timedelta(hours=1), NOV + timedelta(hours=23)) is None
        assert sealed_window(db.session, datetime(2026, 11, 20, tzinfo=UTC), DEC) is None
        assert day_of(datetime(2026, 11, 2, 0, 30, tzinfo=timezone(timedelta(hours=2)))) == NOV


def test_a_day_of_values_near_the_limit_sums_past_a_bigint(app):
    """12 readings of 999,999,999,999.999999 in a day: 1.2·10^19 millionths, more than a signed 64-bit integer."""
    with app.app_context():
        a = asset("a")
        top = "999999999999.999999"
        readings(a, [(f"2026-11-02T{hour:02d}:00:00+00:00", top) for hour in range(12)])
        db.session.commit()
        if db.engine.dialect.name == "sqlite":
            pytest.skip("SQLite's SUM is 64-bit: the raw readings overflow there as well")
        seal_days(db.session, datetime(2026, 11, 3, tzinfo=UTC))
        b = bucket("b", "sum", [a])
        db.session.commit()
        assert bucket_usages(db.session, NOV, DEC)[b.id].total == D(top) * 12


# ---- billing from sealed days against the slow reference, on random data ------------------------------------

AGGS = ["sum", "max", "avg", "count", "p95", "last"]
values = st.decimals(min_value=0, max_value=D("99999.999999"), places=6, allow_nan=False, allow_infinity=False)
# (asset, unit, a second from Oct 30th, values an hour apart); edges of days drawn often
seconds = st.one_of(st.integers(0, 36 * 86400), st.integers(0, 36).map(lambda d: d * 86400),
                    st.integers(1, 36).map(lambda d: d * 86400 - 1))
bursts = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), seconds,
                            st.lists(values | st.sampled_from([D(1), D(2)]), min_size=1, max_size=5)), max_size=6)
START = datetime(2026, 10, 30, tzinfo=UTC)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=bursts, late=bursts, horizon_day=st.integers(0, 37),
       window=st.tuples(st.integers(0, 36 * 24), st.integers(1, 36 * 24)),
       buckets=st.lists(st.tuples(st.sampled_from(AGGS), st.integers(0, 1), st.sets(st.integers(0, 2), max_size=3)),
                        min_size=1, max_size=4))
def test_billing_from_sealed_days_equals_the_reference_whatever_the_horizon_and_the_late_readings(
        app, before, late, horizon_day, window, buckets):
    with app.app_context():
        empty_tables()
        units = [unit_type("u0"), unit_type("u1")]
        owner = client()
        assets = [asset(f"a{i}", owner) for i in range(3)]
        for index, (agg, unit, bound) in enumerate(buckets):
            bucket(f"b{index}", agg, [assets[i] for i in sorted(bound)], unit=units[unit], owner=owner)

        def store(groups) -> None:
            for asset_index, unit, second, burst in groups:
                readings(assets[asset_index], [((START + timedelta(seconds=second, hours=hour)).isoformat(), str(v))
                                               for hour, v in enumerate(burst)], unit=units[unit])
            db.session.commit()

        store(before)
        seal_days(db.session, START + timedelta(days=horizon_day))
        store(late)
        start = START + timedelta(hours=window[0])
        for period_start, period_end in ((NOV, DEC), (start, start + timedelta(hours=window[1]))):
            expected = reference_usages(db.session, period_start, period_end)
            assert bucket_usages(db.session, period_start, period_end) == expected
            assert usage_for_specs(db.session, bucket_specs(db.session), period_start, period_end,
                                   whole_month=True) == expected


# ---- PostgreSQL: sessions at once on one sealed day --------------------------------------------------------------

def one_reading_on_november_2nd(app, backend) -> tuple[int, int]:
    """(asset id, unit type id) of an asset with one reading on 2026-11-02 (PostgreSQL only: SQLite has one writer)."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    with app.app_context():
        a = asset("a")
        gb = unit_type()
        readings(a, [("2026-11-02T10:00:00+00:00", "1")], unit=gb)
        db.session.commit()
        return a.id, gb.id


def write_late_reading(ids: tuple[int, int], moment: datetime, value: str, received: datetime) -> None:
    """Write one reading as ingest writes a late one, in the session's open transaction: the asset's summaries
    already cover it, so only the reading is written (no lock on the asset or its summaries)."""
    from ingest.store import KnownSummaries, NewReading, prepare_readings, write_readings

    known = KnownSummaries({ids[0]: datetime(2026, 11, 9, tzinfo=UTC)},
                           {ids: (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC))})
    prepared = prepare_readings([NewReading(ids[0], ids[1], moment, D(value))], received, "postgresql", known)
    assert prepared.units[0][0] == [] and prepared.seen[0][0] == []
    write_readings(db.session, prepared)


def test_two_late_batches_for_the_same_sealed_day_at_once_both_count(app, backend):
    """The second batch waits for the first's lock on the day's row, then recounts with both readings."""
    ids = one_reading_on_november_2nd(app, backend)
    with app.app_context():
        seal_days(db.session, datetime(2026, 11, 10, tzinfo=UTC))
    first_stored, second_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def late(ts: str, value: str, hold: bool) -> None:
        try:
            with app.app_context():
                write_late_reading(ids, datetime.fromisoformat(ts), value, datetime(2026, 11, 12, tzinfo=UTC))
                if hold:
                    first_stored.set()
                    second_done.wait(2)  # the second batch must still be waiting on this one's lock
                    assert not second_done.is_set()
                db.session.commit()
                if not hold:
                    second_done.set()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)

    one = threading.Thread(target=late, args=("2026-11-02T11:00:00+00:00", "10", True))
    one.start()
    assert first_stored.wait(30)
    two = threading.Thread(target=late, args=("2026-11-02T12:00:00+00:00", "100", False))
    two.start()
    one.join(60)
    two.join(60)
    assert errors == []
    with app.app_context():
        assert day_rows() == {(ids[0], ids[1], "2026-11-02"): (3, D(111), D(100))}


def test_the_nightly_job_and_the_command_seal_every_day_before_yesterday(app):
    from jobs.reading_days import scheduled_seal_days
    from models import utcnow

    with app.app_context():
        today = day_of(utcnow())
        a = asset("a")
        readings(a, [((today - 3 * DAY).isoformat(), "1"), ((today - DAY).isoformat(), "2"), (today.isoformat(), "4")])
        db.session.commit()
        result = app.test_cli_runner().invoke(args=["seal-reading-days"])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("sealing days")  # the progress bar (drawn only on a terminal)
        assert result.output.rstrip().endswith(f"sealed 2 day(s); every day before {today - DAY:%Y-%m-%d} is sealed")
        assert sealed_before(db.session) == today - DAY
        assert scheduled_seal_days() == f"0 day(s) sealed; every day before {today - DAY:%Y-%m-%d} is sealed"
        assert [row[:1] for row in day_rows().values()] == [(1,)]


def test_the_nightly_seal_hands_its_progress_on(app):
    """seal_ended_days reports through the caller's callback (the command's progress bar): one day sealed (0 %), then
    100."""
    with app.app_context():
        today = day_of(datetime.now(UTC))
        readings(asset("a"), [((today - 2 * DAY).isoformat(), "1")])
        db.session.commit()
        calls: list[tuple[int, str]] = []
        assert seal_ended_days(db.session, lambda percent, message: calls.append((percent, message))) == 1
        assert calls == [(0, f"sealing {today - 2 * DAY:%Y-%m-%d}"), (100, "1 day(s) sealed")]


def test_the_horizon_only_moves_forward(app):
    """Two seals over the same days (the nightly job and the command at once): the later one never takes it back."""
    from database.reading_days import _move_horizon

    with app.app_context():
        _move_horizon(db.session, datetime(2026, 11, 10, tzinfo=UTC))
        _move_horizon(db.session, datetime(2026, 11, 4, tzinfo=UTC))
        assert sealed_before(db.session) == datetime(2026, 11, 10, tzinfo=UTC)
        _move_horizon(db.session, datetime(2026, 11, 11, tzinfo=UTC))
        assert sealed_before(db.session) == datetime(2026, 11, 11, tzinfo=UTC)


def test_each_asset_and_unit_type_gets_its_own_row_per_day_and_billing_adds_them_from_the_first_sealed_day(app):
    with app.app_context():
        gb, cpu = unit_type("gb"), unit_type("cpu")
        a, b = asset("a"), asset("b")
        for target, unit, values in ((a, gb, ("1", "2")), (a, cpu, ("10", "20")), (b, gb, ("100", "200"))):
            readings(target, [("2026-11-01T00:00:00+00:00", values[0]), ("2026-11-02T12:00:00+00:00", values[1])],
                     unit=unit)
        whole = bucket("gb", "sum", [a, b], unit=gb)
        top = bucket("cpu", "max", [a], unit=cpu)
        db.session.commit()
        seal_days(db.session, datetime(2026, 11, 3, tzinfo=UTC))
        assert day_rows() == {(a.id, gb.id, "2026-11-01"): (1, D(1), D(1)),
                              (a.id, gb.id, "2026-11-02"): (1, D(2), D(2)),
                              (a.id, cpu.id, "2026-11-01"): (1, D(10), D(10)),
                              (a.id, cpu.id, "2026-11-02"): (1, D(20), D(20)),
                              (b.id, gb.id, "2026-11-01"): (1, D(100), D(100)),
                              (b.id, gb.id, "2026-11-02"): (1, D(200), D(200))}
        usages = bucket_usages(db.session, NOV, DEC)
        assert (usages[whole.id].total, usages[top.id].total) == (D(303), D(20))
        assert bucket_usages(db.session, NOV, NOV + DAY)[whole.id].total == D(101)


def test_recount_touches_only_sealed_days(app):
    with app.app_context():
        a = asset("a")
        readings(a, [("2026-11-05T10:00:00+00:00", "1")])
        db.session.commit()
        assert recount_days(db.session, NOV, DEC) == 0  # nothing sealed yet
        seal_days(db.session, datetime(2026, 11, 3, tzinfo=UTC))
        assert recount_days(db.session, datetime(2026, 11, 3, tzinfo=UTC), DEC) == 0
        assert recount_days(db.session, datetime(2026, 11, 5, tzinfo=UTC), DEC) == 0
        assert day_rows() == {}


def test_a_day_is_the_utc_day_whatever_the_machines_time_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        assert day_of(datetime(2026, 11, 2, 5, 0)) == datetime(2026, 11, 2, tzinfo=UTC)  # naive: UTC
        assert day_of(datetime(2026, 11, 2, 20, 0, tzinfo=UTC)) == datetime(2026, 11, 2, tzinfo=UTC)
        assert day_of(datetime(2026, 11, 3, 8, 0, tzinfo=timezone(timedelta(hours=13)))) == datetime(2026, 11, 2,
                                                                                                     tzinfo=UTC)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_sealing_a_day_waits_for_a_batch_writing_into_it_and_counts_its_readings(app, backend):
    """The seal takes the archive fence exclusive: a batch in flight (holding it shared) finishes first."""
    ids = one_reading_on_november_2nd(app, backend)
    stored, sealed = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def batch() -> None:
        try:
            with app.app_context():
                write_late_reading(ids, datetime(2026, 11, 2, 11, tzinfo=UTC), "10", datetime(2026, 11, 3, tzinfo=UTC))
                stored.set()
                assert not sealed.wait(2)  # the seal waits for this batch
                db.session.commit()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)

    def seal() -> None:
        try:
            with app.app_context():
                seal_days(db.session, datetime(2026, 11, 3, tzinfo=UTC))
                sealed.set()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    first = threading.Thread(target=batch)
    first.start()
    assert stored.wait(30)
    second = threading.Thread(target=seal)
    second.start()
    first.join(60)
    second.join(60)
    assert errors == [] and sealed.is_set()
    with app.app_context():
        assert day_rows() == {(ids[0], ids[1], "2026-11-02"): (2, D(11), D(10))}


def test_a_partly_sealed_month_joins_each_assets_sealed_days_and_unsealed_hours(app):
    """Days before Nov 10 sealed, the rest raw: a has readings on both sides (5 sealed, 9 after), b only after (7),
    c only before (3), d both with the larger before (9 sealed, 5 after): each figure takes both sides."""
    with app.app_context():
        a, b, c, d = asset("a"), asset("b"), asset("c"), asset("d")
        readings(a, [("2026-11-02T10:00:00+00:00", "5"), ("2026-11-20T10:00:00+00:00", "9")])
        readings(b, [("2026-11-20T10:00:00+00:00", "7")])
        readings(c, [("2026-11-02T10:00:00+00:00", "3")])
        readings(d, [("2026-11-02T10:00:00+00:00", "9"), ("2026-11-20T10:00:00+00:00", "5")])
        ids = {name: bucket(name, name, [a, b, c, d]).id for name in ("sum", "max", "avg", "count")}
        db.session.commit()
        assert seal_days(db.session, datetime(2026, 11, 10, tzinfo=UTC)) == 8  # Nov 2 (the earliest) to Nov 9
        usages = bucket_usages(db.session, NOV, DEC, list(ids.values()))
        figures = {name: {x.external_id: usages[ids[name]].per_asset[x.id] for x in (a, b, c, d)} for name in ids}
        assert figures == {"sum": {"a": D(14), "b": D(7), "c": D(3), "d": D(14)},
                           "max": {"a": D(9), "b": D(7), "c": D(3), "d": D(9)},
                           "avg": {"a": D(7), "b": D(7), "c": D(3), "d": D(7)},
                           "count": {"a": D(1), "b": D(1), "c": D(1), "d": D(1)}}
