"""A sealed day's highest readings (`reading_day_tops`) and billing's p95 from them: a day keeps its n // 10 + 1
highest values; the p95 comes from those and the unsealed hours' readings when that is exact, else from the
readings; late readings, recounts and days sealed before tops were kept all stay exact."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import delete, select

from billing.usage import Bucket, _p95_from_days, _pairs, bucket_usages
from database.reading_days import keep_tops, seal_days, sealed_window
from extensions import db
from models import ReadingDayTop
from tests.api_helpers import bearer, make_key
from tests.conftest import empty_tables
from tests.factories import DEC, NOV, asset, bucket, client, readings, unit_type
from tests.reference import reference_usages

D = Decimal
UTC = timezone.utc


def tops() -> dict[tuple[int, str], list[tuple[int, Decimal]]]:
    """(asset id, day) -> [(rank, value)] in rank order."""
    found: dict[tuple[int, str], list[tuple[int, Decimal]]] = {}
    for row in db.session.scalars(select(ReadingDayTop).order_by(ReadingDayTop.asset_id, ReadingDayTop.day,
                                                                 ReadingDayTop.rank)):
        found.setdefault((row.asset_id, f"{row.day:%Y-%m-%d}"), []).append((row.rank, row.value))
    return found


def day_of_values(day: int, values: list[int | str], hour: int = 0) -> list[tuple[str, str]]:
    """Readings a minute apart from `hour` on November `day`, with these values."""
    start = datetime(2026, 11, day, hour, tzinfo=UTC)
    return [((start + timedelta(minutes=i)).isoformat(), str(v)) for i, v in enumerate(values)]


def test_keep_tops_is_a_tenth_plus_one():
    assert [keep_tops(n) for n in (1, 9, 10, 11, 19, 20, 288)] == [1, 1, 2, 2, 2, 3, 29]


def test_a_sealed_day_keeps_its_highest_values_ranked_ties_included(app):
    """25 readings keep 3 (25, 24, 23); 10 readings keep 2; 9 keep 1; ties take consecutive ranks; the day after
    the horizon keeps nothing."""
    with app.app_context():
        gb = unit_type("gb")
        a, b, c, d = asset("a"), asset("b"), asset("c"), asset("d")
        readings(a, day_of_values(2, list(range(1, 26))), gb)
        readings(b, day_of_values(2, [7, 7, 7, 1, 2, 3, 4, 5, 6, 7]), gb)
        readings(c, day_of_values(2, list(range(9))), gb)
        readings(d, day_of_values(3, [5, 6]), gb)
        db.session.commit()
        seal_days(db.session, datetime(2026, 11, 3, tzinfo=UTC))
        assert tops() == {(a.id, "2026-11-02"): [(1, D(25)), (2, D(24)), (3, D(23))],
                          (b.id, "2026-11-02"): [(1, D(7)), (2, D(7))],
                          (c.id, "2026-11-02"): [(1, D(8))]}


def test_a_late_reading_recounts_its_days_tops_through_the_api(app, client):
    """19 readings of 1..19 keep 2; a late 50 (the 20th) makes it 3: 50, 19, 18; posting it again changes nothing."""
    key = make_key(app, "ingest")
    with app.app_context():
        gb = unit_type("gb")
        vm = asset("vm-1")
        readings(vm, day_of_values(2, list(range(1, 20))), gb)
        db.session.commit()
        seal_days(db.session, datetime(2026, 11, 3, tzinfo=UTC))
        assert tops() == {(vm.id, "2026-11-02"): [(1, D(19)), (2, D(18))]}
        vm_id = vm.id
    late = [{"asset_id": "vm-1", "source": "vm", "unit_type": "gb", "timestamp": "2026-11-02T12:00:00Z",
             "value": "50"}]
    for _ in range(2):
        answer = client.post("/api/v1/readings", json=late, headers=bearer(key))
        assert answer.status_code == 200, answer.get_data(as_text=True)
        with app.app_context():
            assert tops() == {(vm_id, "2026-11-02"): [(1, D(50)), (2, D(19)), (3, D(18))]}


def p95_bucket(assets, gb) -> Bucket:
    row = bucket("p", "p95", assets, unit=gb)
    db.session.commit()
    return row


def from_days(start: datetime, end: datetime):
    filter_ = Bucket.id.isnot(None)
    return _p95_from_days(db.session, start, end, sealed_window(db.session, start, end), _pairs(filter_, ("p95",)))


def test_p95_comes_from_the_tops_when_they_hold_it(app):
    """5 sealed days of 1..40 (n = 200): p95 is the value at ascending rank 190, 38. Each day keeps 40, 39, 38, 37,
    36 (floor 36); the 11th highest of the 25 kept is 38 >= 36: exact from the tops."""
    with app.app_context():
        gb = unit_type("gb")
        vm = asset("vm-1")
        for day in range(2, 7):
            readings(vm, day_of_values(day, list(range(1, 41))), gb)
        p = p95_bucket([vm], gb)
        seal_days(db.session, datetime(2026, 11, 10, tzinfo=UTC))
        assert from_days(NOV, DEC) == ({(vm.id, gb.id): D("38.000000")}, set())
        assert bucket_usages(db.session, NOV, DEC)[p.id].total == D(38)


def test_p95_comes_from_the_readings_when_one_day_holds_the_months_top(app):
    """Day 2 reads 101..140, days 3-6 read 1..40 (n = 200): the 11 highest are all day 2's, 140..130, but day 2 kept
    only 140..136 (floor 136) and the 11th highest kept is 39 < 136: the pair is unsure and its p95, 130, comes from
    its readings."""
    with app.app_context():
        gb = unit_type("gb")
        vm, other = asset("vm-1"), asset("vm-2")
        readings(vm, day_of_values(2, list(range(101, 141))), gb)
        for day in range(3, 7):
            readings(vm, day_of_values(day, list(range(1, 41))), gb)
            readings(other, day_of_values(day, list(range(1, 41))), gb)
        p = p95_bucket([vm, other], gb)
        seal_days(db.session, datetime(2026, 11, 10, tzinfo=UTC))
        assert from_days(NOV, DEC) == ({(other.id, gb.id): D("38.000000")}, {(vm.id, gb.id)})
        usage = bucket_usages(db.session, NOV, DEC)[p.id]
        assert usage.per_asset == {vm.id: D(130), other.id: D(38)}


def test_the_unsealed_hours_readings_are_all_candidates(app):
    """Sealed day 2 reads 1..40; the window's unsealed day 3 (after the horizon) reads 200 twice and 1..38 (n = 80,
    k = 5): p95 = the 5th highest = 40 (200, 200, 40, 39, 38 + ...: 200, 200, 40, 39, 38), exact from day 2's tops
    (40..36, floor 36) and every reading of day 3."""
    with app.app_context():
        gb = unit_type("gb")
        vm = asset("vm-1")
        readings(vm, day_of_values(2, list(range(1, 41))), gb)
        readings(vm, day_of_values(3, [200, 200, *range(1, 39)]), gb)
        p = p95_bucket([vm], gb)
        seal_days(db.session, datetime(2026, 11, 3, tzinfo=UTC))
        assert from_days(NOV, DEC) == ({(vm.id, gb.id): D("38.000000")}, set())
        assert bucket_usages(db.session, NOV, DEC)[p.id].total == reference_usages(db.session, NOV, DEC)[p.id].total


def test_a_day_sealed_before_tops_were_kept_is_read_raw_until_recounted(app, runner):
    """Tops gone (a day sealed before the upgrade): the pair is unsure and billed from the readings, the same 38;
    `seal-reading-days --recount` counts the sealed days again and the tops are back."""
    with app.app_context():
        gb = unit_type("gb")
        vm = asset("vm-1")
        for day in range(2, 7):
            readings(vm, day_of_values(day, list(range(1, 41))), gb)
        p = p95_bucket([vm], gb)
        seal_days(db.session, datetime(2026, 11, 7, tzinfo=UTC))
        before = tops()
        db.session.execute(delete(ReadingDayTop).where(ReadingDayTop.day == datetime(2026, 11, 4, tzinfo=UTC)))
        db.session.commit()
        assert from_days(NOV, DEC) == ({}, {(vm.id, gb.id)})
        assert bucket_usages(db.session, NOV, DEC)[p.id].total == D(38)
        db.session.remove()
    result = runner.invoke(args=["seal-reading-days", "--recount"])
    assert result.exit_code == 0, result.output
    assert "counted 5 sealed day(s) again" in result.output
    with app.app_context():
        assert tops() == before


# ---- p95 from tops against the slow reference, many readings per day ----------------------------------------------

START = datetime(2026, 11, 1, tzinfo=UTC)
# per asset, per day of a week: how many readings (0-40), how spread their values, and a scale: 10^4 makes that day
# hold the week's top
week = st.lists(st.tuples(st.integers(0, 40), st.sampled_from([5, 10**6]), st.sampled_from([1, 1, 1, 10**4])),
                min_size=7, max_size=7)


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(weeks=st.tuples(week, week), rnd=st.randoms(use_true_random=False), horizon_day=st.integers(0, 7),
       window=st.tuples(st.integers(0, 7 * 24), st.integers(1, 7 * 24)),
       late=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6), st.integers(0, 10**6)), max_size=3))
def test_p95_from_tops_equals_the_reference(app, weeks, rnd, horizon_day, window, late):
    """Two assets, up to 40 readings a day for a week (ties, spread, a day that holds the week's top), a random
    horizon, window and late readings: the p95 equals the slow reference's, whole month and window."""
    with app.app_context():
        empty_tables()
        gb = unit_type("gb")
        owner = client()
        assets = [asset(f"a{i}", owner) for i in range(2)]
        p = bucket("p", "p95", assets, unit=gb, owner=owner)
        for index, days in enumerate(weeks):
            for day, (count, spread, scale) in enumerate(days):
                stamp = START + timedelta(days=day, seconds=index * 7)
                readings(assets[index], [((stamp + timedelta(seconds=30 * i)).isoformat(),
                                          str(rnd.randint(0, spread) * scale)) for i in range(count)], gb)
        db.session.commit()
        seal_days(db.session, START + timedelta(days=horizon_day))
        for index, day, value in late:
            readings(assets[index], [((START + timedelta(days=day, hours=23)).isoformat(), str(value))], gb)
        db.session.commit()
        start = START + timedelta(hours=window[0])
        for period_start, period_end in ((NOV, DEC), (start, start + timedelta(hours=window[1]))):
            assert bucket_usages(db.session, period_start, period_end)[p.id] == \
                reference_usages(db.session, period_start, period_end)[p.id]
