"""Auto-provisioning: client assets reporting an auto-provision unit type get bound to a bucket from its template."""
import re
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select

from billing.provisioning import preview_provisioning, run_provisioning
from extensions import db
from ingest.store import NewReading, store_readings
from models import Asset, AuditLog, Bucket, Client, JobRun, UnitType, User, bucket_assets
from tests.conftest import csrf_token, work_jobs

TS = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)


def add_asset(external_id: str, owner: Client | None, unit: UnitType | None, source: str = "exchange",
              **fields) -> Asset:
    """An asset; with `unit`, one reading of that unit type (so it appears in asset_units)."""
    row = Asset(external_id=external_id, source_type=source, client=owner, **fields)
    db.session.add(row)
    db.session.flush()
    if unit is not None:
        store_readings(db.session, [NewReading(row.id, unit.id, TS, Decimal(1)),
                                    NewReading(row.id, unit.id, TS.replace(hour=13), Decimal(2))])
    return row


def build() -> dict:
    mailboxes = UnitType(name="mailboxes", aggregation="max", base_price=Decimal("4"), overage_price=Decimal("5.5"),
                         auto_provision=True, filter_pattern="mbx-*")
    vms = UnitType(name="vm-hours", aggregation="sum", auto_provision=False)
    acme, beta = Client(name="Acme"), Client(name="Beta")
    db.session.add_all([mailboxes, vms, acme, beta])
    db.session.flush()
    kept = add_asset("mbx-kept", acme, mailboxes)
    existing = Bucket(client=acme, name="Old mailboxes", unit_type=mailboxes, source_type="exchange",
                      enabled=False, assets=[kept])
    beta_bucket = Bucket(client=beta, name="Beta mail", unit_type=mailboxes, source_type="exchange",
                         commit=Decimal(50), reviewed=True)
    db.session.add_all([existing, beta_bucket])
    assets = {
        "mbx-1": add_asset("mbx-1", acme, mailboxes),
        "mbx-2": add_asset("mbx-2", acme, mailboxes),
        "mbx-3": add_asset("mbx-3", acme, mailboxes, source="o365"),
        "MBX-4": add_asset("MBX-4", acme, mailboxes),                    # glob is case-sensitive
        "vm-1": add_asset("vm-1", acme, mailboxes),                      # does not match mbx-*
        "mbx-dis": add_asset("mbx-dis", acme, mailboxes, disregarded_at=TS),
        "mbx-off": add_asset("mbx-off", acme, mailboxes, enabled=False),
        "mbx-free": add_asset("mbx-free", None, mailboxes),              # unassigned
        "mbx-quiet": add_asset("mbx-quiet", acme, None),                 # no readings
        "mbx-vm": add_asset("mbx-vm", acme, vms),                        # only readings of a manual unit type
        "mbx-b1": add_asset("mbx-b1", beta, mailboxes),
    }
    db.session.commit()
    return {"assets": {k: v.id for k, v in assets.items()}, "acme": acme.id, "beta": beta.id,
            "beta_bucket": beta_bucket.id, "existing": existing.id, "mailboxes": mailboxes.id}


def bound_external_ids(bucket_id: int) -> list[str]:
    return sorted(db.session.scalars(select(Asset.external_id).join(bucket_assets, bucket_assets.c.asset_id == Asset.id)
                                     .where(bucket_assets.c.bucket_id == bucket_id)))


def test_matching_client_assets_get_template_buckets(app):
    with app.app_context():
        ids = build()
        summary = run_provisioning(db.session)
        acme = {b.name: b for b in db.session.scalars(select(Bucket).where(Bucket.client_id == ids["acme"]))}
        assert (summary.buckets_created, summary.assets_bound) == (2, 4)
        assert set(acme) == {"Old mailboxes", "mailboxes (exchange)", "mailboxes (o365)"}
        exchange = acme["mailboxes (exchange)"]
        assert bound_external_ids(exchange.id) == ["mbx-1", "mbx-2"]
        assert bound_external_ids(acme["mailboxes (o365)"].id) == ["mbx-3"]
        assert (exchange.aggregation, exchange.base_price, exchange.overage_price, exchange.commit) == (
            "max", Decimal("4"), Decimal("5.5"), Decimal(0))
        assert (exchange.reviewed, exchange.enabled, exchange.source_type) == (False, True, "exchange")
        assert exchange.unit_type_id == ids["mailboxes"]
        assert bound_external_ids(ids["existing"]) == ["mbx-kept"]          # already bound, even if disabled


def test_existing_enabled_bucket_of_the_client_is_reused(app):
    with app.app_context():
        ids = build()
        run_provisioning(db.session)
        beta = db.session.scalars(select(Bucket).where(Bucket.client_id == ids["beta"])).all()
        assert [b.id for b in beta] == [ids["beta_bucket"]]
        assert bound_external_ids(ids["beta_bucket"]) == ["mbx-b1"]
        assert beta[0].reviewed is True and beta[0].commit == Decimal(50)


def test_second_run_changes_nothing(app):
    with app.app_context():
        build()
        run_provisioning(db.session)
        buckets = db.session.scalar(select(func.count()).select_from(Bucket))
        links = db.session.scalar(select(func.count()).select_from(bucket_assets))
        audits = db.session.scalar(select(func.count()).select_from(AuditLog))
        again = run_provisioning(db.session)
        assert (again.buckets_created, again.assets_bound) == (0, 0)
        assert db.session.scalar(select(func.count()).select_from(Bucket)) == buckets == 4
        assert db.session.scalar(select(func.count()).select_from(bucket_assets)) == links == 5
        assert db.session.scalar(select(func.count()).select_from(AuditLog)) == audits
        assert preview_provisioning(db.session) == []


def test_disregarded_disabled_unassigned_and_non_matching_assets_are_skipped(app):
    with app.app_context():
        ids = build()
        run_provisioning(db.session)
        bound = set(db.session.scalars(select(Asset.external_id).join(bucket_assets,
                                                                      bucket_assets.c.asset_id == Asset.id)))
        skipped = ("MBX-4", "vm-1", "mbx-dis", "mbx-off", "mbx-free", "mbx-quiet", "mbx-vm")
        links_of_skipped = db.session.scalar(select(func.count()).select_from(bucket_assets).where(
            bucket_assets.c.asset_id.in_([ids["assets"][name] for name in skipped])))
    assert bound == {"mbx-kept", "mbx-1", "mbx-2", "mbx-3", "mbx-b1"}
    assert not bound & set(skipped)
    assert links_of_skipped == 0   # by id too: none of the seven skipped assets is in any bucket


def test_a_wider_pattern_takes_more_and_off_means_none(app):
    with app.app_context():
        ids = build()
        unit = db.session.get(UnitType, ids["mailboxes"])
        unit.filter_pattern = "*"
        db.session.commit()
        assert run_provisioning(db.session).assets_bound == 6          # + MBX-4 and vm-1
        unit.auto_provision = False
        other = add_asset("mbx-9", db.session.get(Client, ids["acme"]), unit)
        db.session.commit()
        assert run_provisioning(db.session).assets_bound == 0
        assert db.session.get(Asset, other.id).buckets == []


def test_each_creation_and_binding_is_audited(app):
    with app.app_context():
        ids = build()
        run_provisioning(db.session)
        created = db.session.scalars(select(AuditLog).where(AuditLog.table == "buckets",
                                                            AuditLog.action == "create")).all()
        updates = db.session.scalars(select(AuditLog).where(AuditLog.table == "buckets",
                                                            AuditLog.action == "update")).all()
    names = sorted(row.new_values["name"] for row in created)
    assert names[-2:] == ["mailboxes (exchange)", "mailboxes (o365)"]
    assert all(row.new_values["reviewed"] is False for row in created if row.new_values["name"].startswith("mailb"))
    beta = [row for row in updates if row.record_id == str(ids["beta_bucket"])]
    assert beta and beta[-1].new_values["asset_ids"] == [ids["assets"]["mbx-b1"]]


def test_preview_lists_the_plan_without_writing(app):
    with app.app_context():
        ids = build()
        buckets = db.session.scalar(select(func.count()).select_from(Bucket))
        plans = preview_provisioning(db.session)
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Bucket)) == buckets
    summary = sorted((p.client_name, p.source_type, p.bucket_name, p.creates_bucket, tuple(p.asset_external_ids))
                     for p in plans)
    assert summary == [
        ("Acme", "exchange", "mailboxes (exchange)", True, ("mbx-1", "mbx-2")),
        ("Acme", "o365", "mailboxes (o365)", True, ("mbx-3",)),
        ("Beta", "exchange", "Beta mail", False, ("mbx-b1",)),
    ]
    assert next(p for p in plans if not p.creates_bucket).bucket_id == ids["beta_bucket"]


def test_a_taken_name_gets_a_number(app):
    with app.app_context():
        ids = build()
        acme = db.session.get(Client, ids["acme"])
        unit = UnitType(name="other")
        db.session.add(Bucket(client=acme, name="mailboxes (exchange)", unit_type=unit, source_type="x"))
        db.session.commit()
        run_provisioning(db.session)
        names = set(db.session.scalars(select(Bucket.name).where(Bucket.client_id == ids["acme"])))
    assert "mailboxes (exchange) 2" in names




def test_unit_types_page_previews_and_run_now_provisions_through_rq(app, staff_client):
    with app.app_context():
        build()
    page = staff_client.get("/admin/unittype/").get_data(as_text=True)
    assert "Template fields drive nightly auto-provisioning" in page
    preview = re.search(r'<table class="table table-sm table-bordered provisioning-preview">(.*?)</table>', page, re.S)
    assert preview and preview.group(1).count("<tr>") == 4            # header + 3 plans
    assert "mailboxes (o365)" in preview.group(1) and "mbx-1, mbx-2" in preview.group(1)
    assert "would create 2 buckets and bind\n      4 assets" in page
    response = staff_client.post("/admin/unittype/provision",
                                 data={"csrf_token": csrf_token(staff_client, "/admin/unittype/")})
    assert response.status_code == 302
    work_jobs(app)
    with app.app_context():
        run = db.session.scalar(select(JobRun).where(JobRun.kind == "provisioning"))
        assert (run.status, run.lock_key, run.requested_by) == ("done", "provisioning:all", "staff@example.com")
        assert "2 buckets created, 4 assets bound" in run.message
        audit = db.session.scalar(select(AuditLog).where(AuditLog.table == "buckets", AuditLog.action == "create")
                                  .order_by(AuditLog.id.desc()))
        staff_id = db.session.scalar(select(User.id).where(User.email == "staff@example.com"))
        assert audit.user_id == staff_id is not None
    page = staff_client.get("/admin/unittype/").get_data(as_text=True)
    assert "Nothing to provision" in page and 'data-job-status="done"' in page


def test_viewer_sees_the_preview_but_cannot_run(app, viewer_client):
    with app.app_context():
        build()
    page = viewer_client.get("/admin/unittype/").get_data(as_text=True)
    assert "provisioning-preview" in page and "Run now" not in page
    response = viewer_client.post("/admin/unittype/provision",
                                  data={"csrf_token": csrf_token(viewer_client, "/admin/unittype/")})
    assert response.status_code == 403


def test_cli_run_provisioning(app, runner):
    with app.app_context():
        build()
    result = runner.invoke(args=["run-provisioning"])
    assert result.exit_code == 0, result.output
    assert "2 buckets created, 4 assets bound" in result.output
    assert "0 buckets created, 0 assets bound" in runner.invoke(args=["run-provisioning"]).output


def test_unreviewed_buckets_are_highlighted_and_reviewed_in_bulk(app, staff_client):
    with app.app_context():
        build()
        run_provisioning(db.session)
        new_ids = sorted(db.session.scalars(select(Bucket.id).where(Bucket.reviewed.is_(False))))
        for bucket_id in new_ids:
            db.session.get(Bucket, bucket_id).commit = Decimal(25)
        db.session.commit()
    grid = staff_client.get("/admin/bucket/").get_data(as_text=True)
    assert grid.count('<tr class="unreviewed">') == 2 and grid.count("Needs review") == 2
    response = staff_client.post("/admin/bucket/action/", data={
        "action": "review", "rowid": [str(i) for i in new_ids],
        "csrf_token": csrf_token(staff_client, "/admin/bucket/")})
    assert response.status_code == 302
    grid = staff_client.get("/admin/bucket/").get_data(as_text=True)
    assert grid.count('<tr class="unreviewed">') == 0 and grid.count('<tr class="">') == 4
    with app.app_context():
        assert all(db.session.get(Bucket, i).reviewed for i in new_ids)
        audits = db.session.scalars(select(AuditLog).where(AuditLog.table == "buckets", AuditLog.action == "update",
                                                           AuditLog.record_id.in_([str(i) for i in new_ids]))).all()
        assert sum(1 for a in audits if a.new_values.get("reviewed") is True) == 2
