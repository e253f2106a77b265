"""Auto-provisioning's finer rules, through run_provisioning on the real database: the new bucket's fields and
name (free per client, at most 200 characters), which assets count as bound, the order of unit types, progress."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from billing.provisioning import run_provisioning, template_bucket_name
from extensions import db
from ingest.store import NewReading, store_readings
from models import Asset, Bucket, Client, UnitType

TS = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)


def reporting(external_id: str, owner: Client, *units: UnitType, source: str = "vm") -> Asset:
    """An asset of `owner` with one reading of each unit type."""
    row = Asset(external_id=external_id, source_type=source, client=owner)
    db.session.add(row)
    db.session.flush()
    store_readings(db.session, [NewReading(row.id, unit.id, TS, Decimal(1)) for unit in units])
    return row


def auto(name: str, **fields) -> UnitType:
    row = UnitType(name=name, aggregation=fields.pop("aggregation", "sum"), auto_provision=True, **fields)
    db.session.add(row)
    db.session.flush()
    return row


def buckets_of(owner: Client) -> dict[str, Bucket]:
    return {b.name: b for b in db.session.scalars(select(Bucket).where(Bucket.client_id == owner.id))}


def test_a_new_bucket_takes_the_template_with_commit_0_enabled_and_not_reviewed(app):
    with app.app_context():
        cpu = auto("cpu", aggregation="max", base_price=Decimal("1.25"), overage_price=Decimal("2.5"))
        acme = Client(name="Acme")
        db.session.add(acme)
        reporting("vm-1", acme, cpu)
        db.session.commit()
        assert run_provisioning(db.session).buckets_created == 1
        made = buckets_of(acme)["cpu (vm)"]
        assert (made.commit, made.enabled, made.reviewed, made.aggregation, made.base_price, made.overage_price,
                made.source_type) == (Decimal("0"), True, False, "max", Decimal("1.25"), Decimal("2.5"), "vm")


def test_a_name_is_free_per_client_and_a_long_one_stays_within_200_characters(app):
    long_source = "s" * 100  # unit type and source type names hold 100 characters each: 203 with " (" and ")"
    with app.app_context():
        cpu = auto("cpu")
        long_unit = auto("x" * 100)
        acme, beta = Client(name="Acme"), Client(name="Beta")
        db.session.add_all([acme, beta])
        db.session.flush()
        db.session.add_all([Bucket(client=acme, name="cpu (vm)", unit_type=long_unit, source_type="other"),
                            Bucket(client=acme, name=template_bucket_name(long_unit.name, long_source), unit_type=cpu,
                                   source_type="other")])
        reporting("a-1", acme, cpu)
        reporting("a-2", acme, long_unit, source=long_source)
        reporting("b-1", beta, cpu)
        db.session.commit()
        run_provisioning(db.session)
        acme_names, beta_names = set(buckets_of(acme)), set(buckets_of(beta))
    wanted = template_bucket_name("x" * 100, long_source)
    assert wanted == ("x" * 100 + " (" + long_source + ")")[:200] and len(wanted) == 200
    assert "cpu (vm) 2" in acme_names  # the client already uses the name (for another unit type)
    assert wanted[:198] + " 2" in acme_names  # shortened so that the number fits in 200 characters
    assert beta_names == {"cpu (vm)"}  # another client's use of a name does not count


def test_an_asset_bound_only_for_another_unit_type_joins_the_clients_bucket_of_this_one(app):
    with app.app_context():
        cpu, disk = auto("cpu"), UnitType(name="disk", aggregation="sum")
        db.session.add(disk)
        acme = Client(name="Acme")
        db.session.add(acme)
        db.session.flush()
        target = reporting("vm-1", acme, cpu, disk)
        cpu_bucket = Bucket(client=acme, name="CPU", unit_type=cpu, source_type="vm")
        disk_bucket = Bucket(client=acme, name="Disk", unit_type=disk, source_type="vm", assets=[target])
        db.session.add_all([cpu_bucket, disk_bucket])
        db.session.commit()
        summary = run_provisioning(db.session)
        assert (summary.buckets_created, summary.assets_bound) == (0, 1)
        assert [a.external_id for a in db.session.get(Bucket, cpu_bucket.id).assets] == ["vm-1"]


def test_unit_types_run_in_name_order_and_progress_is_whole_percents(app):
    with app.app_context():
        for name in ("zz", "aa", "mm"):
            auto(name)
        acme = Client(name="Acme")
        db.session.add(acme)
        reporting("vm-1", acme, *db.session.scalars(select(UnitType)).all())
        db.session.commit()
        steps: list[tuple[object, str]] = []
        summary = run_provisioning(db.session, lambda percent, message: steps.append((percent, message)))
    assert steps == [(33, "aa: 1 buckets created, 1 assets bound"), (66, "mm: 2 buckets created, 2 assets bound"),
                     (100, "zz: 3 buckets created, 3 assets bound")]
    assert all(type(percent) is int for percent, _ in steps)
    assert summary.message() == "Auto-provisioning over 3 unit types: 3 buckets created, 3 assets bound."


def test_an_asset_still_bound_to_its_former_clients_bucket_is_provisioned_for_its_client(app):
    with app.app_context():
        cpu = auto("cpu")
        acme, beta = Client(name="Acme"), Client(name="Beta")
        db.session.add_all([acme, beta])
        db.session.flush()
        moved = reporting("vm-1", beta, cpu)
        db.session.add(Bucket(client=beta, name="Beta CPU", unit_type=cpu, source_type="vm", assets=[moved]))
        db.session.flush()
        moved.client = acme  # reassigned; Beta's bucket still lists it
        db.session.commit()
        assert run_provisioning(db.session).assets_bound == 1
        assert [a.external_id for a in buckets_of(acme)["cpu (vm)"].assets] == ["vm-1"]


def test_an_empty_filter_pattern_takes_every_asset(app):
    with app.app_context():
        cpu = auto("cpu", filter_pattern="")
        acme = Client(name="Acme")
        db.session.add(acme)
        reporting("vm-1", acme, cpu)
        db.session.commit()
        assert run_provisioning(db.session).assets_bound == 1


def test_the_preview_lists_plans_by_client_then_source_with_assets_by_id(app):
    from billing.provisioning import preview_provisioning

    with app.app_context():
        cpu = auto("cpu")
        acme, beta = Client(name="Acme"), Client(name="Beta")
        db.session.add_all([beta, acme])  # Beta gets the lower id
        db.session.flush()
        made = [reporting(name, owner, cpu, source=source) for name, owner, source in (
            ("z-1", acme, "vm"), ("a-1", acme, "hyperv"), ("z-2", beta, "vm"), ("a-2", acme, "vm"),
            ("b-1", beta, "hyperv"))]
        db.session.commit()
        ids = {row.external_id: row.id for row in made}
        plans = [(p.client_name, p.source_type, p.asset_external_ids, p.asset_ids) for p in preview_provisioning(db.session)]
    assert plans == [("Beta", "hyperv", ["b-1"], [ids["b-1"]]), ("Beta", "vm", ["z-2"], [ids["z-2"]]),
                     ("Acme", "hyperv", ["a-1"], [ids["a-1"]]), ("Acme", "vm", ["z-1", "a-2"], [ids["z-1"], ids["a-2"]])]


def test_a_plan_lists_its_assets_by_id_not_in_the_order_they_last_reported(app):
    """Within one client and source type the preview lists assets by id: z-1, a-2, m-3 (created in that order), although their
    last readings run the other way (3, 2 and 1 November) and their external ids sort a, m, z."""
    from billing.provisioning import preview_provisioning

    with app.app_context():
        cpu = auto("cpu")
        acme = Client(name="Acme")
        db.session.add(acme)
        db.session.flush()
        for day, name in ((3, "z-1"), (2, "a-2"), (1, "m-3")):
            row = Asset(external_id=name, source_type="vm", client=acme)
            db.session.add(row)
            db.session.flush()
            store_readings(db.session, [NewReading(row.id, cpu.id, TS.replace(day=day), Decimal(1))])
        db.session.commit()
        plans = preview_provisioning(db.session)
    assert [(p.source_type, p.asset_external_ids) for p in plans] == [("vm", ["z-1", "a-2", "m-3"])]
    assert plans[0].asset_ids == sorted(plans[0].asset_ids)


def test_each_plan_names_its_unit_type_by_id_and_name(app):
    """The preview's plans carry the unit type they provision (id and name; the Unit Types page shows the name)."""
    from billing.provisioning import preview_provisioning

    with app.app_context():
        cpu, disk = auto("cpu"), auto("disk")
        acme = Client(name="Acme")
        db.session.add(acme)
        reporting("vm-1", acme, cpu, disk)
        db.session.commit()
        ids = {"cpu": cpu.id, "disk": disk.id}
        plans = [(p.unit_type_id, p.unit_type_name, p.bucket_name) for p in preview_provisioning(db.session)]
    assert plans == [(ids["cpu"], "cpu", "cpu (vm)"), (ids["disk"], "disk", "disk (vm)")]


def test_a_taken_name_with_a_backslash_or_like_wildcards_still_gets_a_number(app):
    """The client already has buckets named 'C:\\x_y% (vm)' (another unit type) and 'C:\\x_y% (vm) 2': the new bucket
    is 'C:\\x_y% (vm) 3'. (PostgreSQL's LIKE treats a backslash as an escape: a LIKE prefix filter missed both
    names and the insert hit uq_buckets_client_name.)"""
    with app.app_context():
        odd = auto("C:\\x_y%")
        other = UnitType(name="other", aggregation="sum")
        acme = Client(name="Acme")
        db.session.add_all([other, acme])
        db.session.flush()
        db.session.add_all([Bucket(client=acme, name=r"C:\x_y% (vm)", unit_type=other, source_type="x"),
                            Bucket(client=acme, name=r"C:\x_y% (vm) 2", unit_type=other, source_type="y")])
        reporting("vm-1", acme, odd)
        db.session.commit()
        assert run_provisioning(db.session).buckets_created == 1
        names = set(buckets_of(acme))
    assert names == {r"C:\x_y% (vm)", r"C:\x_y% (vm) 2", r"C:\x_y% (vm) 3"}
