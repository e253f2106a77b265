"""The binding rule (billing/binding.py): which usage no enabled bucket bills (unbound), which bucket an asset joins,
and "Bind to client bucket" on the Unbound Assets page, through the plain functions."""
from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import select

from billing.binding import UNBOUND_WINDOW, bind_unbound, bucket_for, enabled_buckets, unbound_pairs
from extensions import db
from ingest.store import NewReading, store_readings
from models import Asset, Bucket, Client, UnitType, bucket_assets, utcnow


def add_asset(external_id: str, owner: Client | None, *units: UnitType, source: str = "vcenter", ts=None,
              **fields) -> Asset:
    """An asset with one reading of each of `units` at `ts` (a day ago by default)."""
    row = Asset(external_id=external_id, source_type=source, client=owner, **fields)
    db.session.add(row)
    db.session.flush()
    ts = ts or utcnow() - timedelta(days=1)
    store_readings(db.session, [NewReading(row.id, unit.id, ts, Decimal(1)) for unit in units])
    return row


def add_bucket(owner: Client, name: str, unit: UnitType, source: str = "vcenter", assets=(), **fields) -> Bucket:
    row = Bucket(client=owner, name=name, unit_type=unit, source_type=source, assets=list(assets), **fields)
    db.session.add(row)
    db.session.flush()
    return row


def bound_to(bucket_id: int) -> list[str]:
    return sorted(db.session.scalars(select(Asset.external_id).join(bucket_assets, bucket_assets.c.asset_id == Asset.id)
                                     .where(bucket_assets.c.bucket_id == bucket_id)))


def units() -> tuple[UnitType, UnitType]:
    vm, gb = UnitType(name="vm-hours"), UnitType(name="storage-gb")
    db.session.add_all([vm, gb])
    db.session.flush()
    return vm, gb


def test_usage_is_unbound_from_the_last_60_days_to_the_second(app):
    with app.app_context():
        vm, _ = units()
        acme = Client(name="Acme")
        now = utcnow().replace(microsecond=0)
        inside = add_asset("inside", acme, vm, ts=now - UNBOUND_WINDOW)                   # exactly 60 days before
        add_asset("outside", acme, vm, ts=now - UNBOUND_WINDOW - timedelta(seconds=1))
        db.session.commit()
        pairs = db.session.execute(unbound_pairs(now)).all()
        # the default `now` is the current time: the same answer a moment later
        by_default = db.session.execute(unbound_pairs()).all()
        assert UNBOUND_WINDOW == timedelta(days=60)
        assert [tuple(p) for p in pairs] == [(inside.id, vm.id)]
        assert by_default == []  # 60 days before "now" has passed for `inside` too


def test_the_window_ends_now_in_utc_whatever_the_machines_time_zone(app, monkeypatch):
    with app.app_context():
        vm, _ = units()
        acme = Client(name="Acme")
        # 60 days and 6 hours ago: outside the window; a naive local "now" on a UTC-12 machine would take it in
        old = add_asset("old", acme, vm, ts=utcnow() - UNBOUND_WINDOW - timedelta(hours=6))
        recent = add_asset("recent", acme, vm, ts=utcnow() - UNBOUND_WINDOW + timedelta(hours=6))
        db.session.commit()
        monkeypatch.setenv("TZ", "Etc/GMT+12")  # POSIX sign: UTC-12
        time.tzset()
        try:
            pairs = {tuple(p) for p in db.session.execute(unbound_pairs())}
        finally:
            monkeypatch.undo()
            time.tzset()
        assert pairs == {(recent.id, vm.id)} and old.id not in {a for a, _ in pairs}


def test_a_disabled_bucket_or_one_of_another_unit_does_not_bind(app):
    with app.app_context():
        vm, gb = units()
        acme = Client(name="Acme")
        bound = add_asset("bound", acme, vm, gb)
        off = add_asset("off", acme, vm)
        recent = add_asset("recent", acme, vm)
        add_bucket(acme, "VMs", vm, assets=[bound])
        add_bucket(acme, "Old VMs", vm, enabled=False, assets=[off])
        add_bucket(acme, "Storage", gb, assets=[recent])
        add_asset("ignored", acme, vm, disregarded_at=utcnow())
        db.session.commit()
        pairs = {tuple(p) for p in db.session.execute(unbound_pairs())}
        assert pairs == {(bound.id, gb.id), (off.id, vm.id), (recent.id, vm.id)}


def test_enabled_buckets_are_grouped_by_client_and_unit_lowest_id_first(app):
    with app.app_context():
        vm, gb = units()
        acme, beta, gamma = Client(name="Acme"), Client(name="Beta"), Client(name="Gamma")
        second = add_bucket(acme, "VMs 2", vm, source="hyperv")
        first = add_bucket(acme, "VMs 1", vm)
        storage = add_bucket(acme, "Storage", gb)
        add_bucket(acme, "Off", vm, enabled=False)
        theirs = add_bucket(beta, "Beta VMs", vm)
        add_bucket(gamma, "Gamma VMs", vm)  # a client not asked for
        db.session.commit()
        found = enabled_buckets(db.session, {acme.id, beta.id})
        only_vm = enabled_buckets(db.session, [acme.id], vm.id)
        ids = {key: [row.id for row in rows] for key, rows in found.items()}
        row = found[(acme.id, gb.id)][0]
        assert ids == {(acme.id, vm.id): sorted([second.id, first.id]), (acme.id, gb.id): [storage.id],
                   (beta.id, vm.id): [theirs.id]}
        assert (row.client_id, row.unit_type_id, row.source_type, row.name) == (acme.id, gb.id, "vcenter", "Storage")
        assert {key: [r.id for r in rows] for key, rows in only_vm.items()} == {
        (acme.id, vm.id): sorted([second.id, first.id])}


def choice(bucket_id: int, source_type: str) -> SimpleNamespace:
    return SimpleNamespace(id=bucket_id, source_type=source_type)


def test_an_asset_joins_the_first_bucket_of_its_source_type_else_the_first_of_any_when_allowed():
    choices = [choice(1, "hyperv"), choice(2, "vcenter"), choice(3, "vcenter")]
    assert bucket_for(choices, "vcenter", any_source=False).id == 2
    assert bucket_for(choices, "vcenter", any_source=True).id == 2
    assert bucket_for(choices, "kvm", any_source=True).id == 1
    assert bucket_for(choices, "kvm", any_source=False) is None
    assert bucket_for([], "kvm", any_source=True) is None


def test_bind_unbound_binds_each_pair_to_the_rule_s_bucket_and_says_what_it_could_not(app):
    with app.app_context():
        vm, gb = units()
        acme, beta = Client(name="Acme"), Client(name="Beta")
        db.session.add_all([acme, beta])
        hyperv = add_bucket(acme, "Hyper-V", vm, source="hyperv")
        vcenter = add_bucket(acme, "vCenter", vm)
        storage = add_bucket(acme, "Storage", gb, source="netapp")
        add_bucket(beta, "Beta VMs", vm, enabled=False)
        both = add_asset("both", acme, vm, gb)                  # vm -> its own source's bucket; gb -> any source
        kvm = add_asset("kvm", acme, vm, source="kvm")          # no bucket of its source: the lowest id of any
        loose = add_asset("loose", None, vm)                    # no client
        theirs = add_asset("theirs", beta, vm)                  # its client's only bucket is disabled
        also = add_asset("also", beta, vm)                      # the same: each miss is reported, none stops the rest
        already = add_asset("already", acme, vm)
        vcenter.assets.append(already)
        untouched = add_asset("untouched", acme, vm)            # unbound, but not asked for
        db.session.commit()
        made, missed = bind_unbound(db.session, [theirs.id, both.id, also.id, kvm.id, loose.id, already.id])
        db.session.commit()
        pending = {tuple(p) for p in db.session.execute(unbound_pairs())}
        assert made == 3
        assert sorted(missed) == ["also: its client has no enabled bucket of that unit type", "loose: no client",
                                  "theirs: its client has no enabled bucket of that unit type"]
        assert (bound_to(vcenter.id), bound_to(hyperv.id), bound_to(storage.id)) == (
            ["already", "both"], ["kvm"], ["both"])
        assert pending == {(loose.id, vm.id), (theirs.id, vm.id), (also.id, vm.id), (untouched.id, vm.id)}
