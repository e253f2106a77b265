"""What an audit row holds: plain JSON values (text for amounts and moments, id lists, ids for records), secrets
redacted, the actor of the app context, one row per record of a set-based change."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from database.audit import audit_bulk, audit_rows, current_actor, set_actor
from extensions import db
from models import ArchivedMonth, AuditLog, Bucket, UnitType
from tests.factories import asset, client

MOMENT = datetime(2026, 10, 1, 12, 30, tzinfo=timezone.utc)


def rows(table: str) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog).where(AuditLog.table == table).order_by(AuditLog.id)))


def test_a_set_based_change_is_written_as_plain_json_with_secrets_redacted(app):
    with app.app_context():
        acme = client("Acme")
        audit_rows(db.session, "update", "things", [
            (7, {"amount": Decimal("1.50"), "key_hash": "abc", "secret": None},
             {"amount": Decimal("2.25"), "when": MOMENT, "day": date(2026, 10, 1), "ids": (3, 1),
              "nested": {1: [Decimal("0.1"), MOMENT]}, "owner": acme, "count": 4, "password_hash": "pbkdf2:x",
              "secret": "s3cret", "none": None}),
            (None, None, {"flag": True}),
        ])
        first, second = rows("things")
        assert (first.action, first.record_id, second.record_id) == ("update", "7", None)
        assert first.old_values == {"amount": "1.50", "key_hash": "[redacted]", "secret": None}
        assert first.new_values == {"amount": "2.25", "when": "2026-10-01T12:30:00+00:00", "day": "2026-10-01",
                                    "ids": [3, 1], "nested": {"1": ["0.1", "2026-10-01T12:30:00+00:00"]},
                                    "owner": acme.id, "count": 4, "password_hash": "[redacted]",
                                    "secret": "[redacted]", "none": None}
        assert (second.old_values, second.new_values) == (None, {"flag": True})


def test_nothing_to_audit_writes_nothing_and_a_bulk_change_writes_a_row_per_record(app):
    with app.app_context():
        audit_rows(db.session, "delete", "things", [])
        audit_bulk(db.session, "delete", "things", [])
        assert rows("things") == []
        audit_bulk(db.session, "delete", "things", [5, "6"], old={"amount": Decimal("3")})
        written = rows("things")
        assert [(r.action, r.record_id, r.old_values, r.new_values) for r in written] == [
            ("delete", "5", {"amount": "3"}, None), ("delete", "6", {"amount": "3"}, None)]


def test_rows_name_the_actor_of_the_app_context_and_nobody_outside_one(app):
    assert current_actor() == (None, None)
    with app.app_context():
        assert current_actor() == (None, None)
        audit_bulk(db.session, "create", "things", [1])
        set_actor(user_id=3, api_key_id=4)
        assert current_actor() == (3, 4)
        audit_bulk(db.session, "create", "things", [2])
        acme = client("Acme")  # through the ORM hook
        db.session.flush()
        set_actor(api_key_id=9)
        assert current_actor() == (None, 9)
        audit_bulk(db.session, "create", "things", [3])
        assert [(r.user_id, r.api_key_id) for r in rows("things")] == [(None, None), (3, 4), (None, 9)]
        (created,) = rows("clients")
        assert (created.record_id, created.user_id, created.api_key_id) == (str(acme.id), 3, 4)


def test_orm_changes_record_their_values_and_a_field_set_from_nothing(app):
    with app.app_context():
        acme = client("Acme")
        unit = UnitType(name="gb", aggregation="sum")
        db.session.add(unit)
        vm = asset("vm-1", owner=None)
        db.session.commit()
        (created,) = [r for r in rows("assets") if r.action == "create"]
        assert created.old_values is None
        assert (created.new_values["external_id"], created.new_values["client_id"]) == ("vm-1", None)
        assert isinstance(created.new_values["created_at"], str)
        vm.client_id, vm.description = acme.id, vm.description
        db.session.commit()
        update = [r for r in rows("assets") if r.action == "update"][-1]
        assert (update.old_values, update.new_values) == ({"client_id": None}, {"client_id": acme.id})
        assert vm.client_id == acme.id  # loaded, as an edit form loads it (an unloaded old value is not read back)
        vm.client_id = None
        db.session.commit()
        update = [r for r in rows("assets") if r.action == "update"][-1]
        assert (update.old_values, update.new_values) == ({"client_id": acme.id}, {"client_id": None})
        # the Bucket's term columns are expressions (column_property), not its own table's columns
        storage = Bucket(client=acme, name="storage", unit_type=unit, source_type="vm", assets=[vm])
        db.session.add(storage)
        db.session.commit()
        (bucket_row,) = [r for r in rows("buckets") if r.action == "create"]
        assert {"name", "client_id", "unit_type_id", "enabled"} <= set(bucket_row.new_values)
        assert not {"commit", "base_price", "overage_price", "assets"} & set(bucket_row.new_values)
        storage.assets.remove(vm)
        db.session.commit()
        unbind = [r for r in rows("buckets") if r.action == "update"][-1]
        assert (unbind.old_values, unbind.new_values) == ({"asset_ids": [vm.id]}, {"asset_ids": []})
        # a record whose key is a moment is named by it; a deleted one keeps its old values
        month = ArchivedMonth(period_start=datetime(2026, 1, 1, tzinfo=timezone.utc), file="2026-01.csv.gz")
        db.session.add(month)
        db.session.commit()
        db.session.delete(month)
        db.session.commit()
        created_month, deleted_month = rows("archived_months")
        assert created_month.record_id == deleted_month.record_id == str(month.period_start)
        assert deleted_month.old_values["file"] == "2026-01.csv.gz" and deleted_month.new_values is None


def test_a_changed_password_is_audited_redacted_on_both_sides(app):
    from models import User

    with app.app_context():
        user = User(email="ops@example.com", password_hash="scrypt:old-hash", role="staff")
        db.session.add(user)
        db.session.commit()
        assert user.password_hash == "scrypt:old-hash"  # loaded, as the password form loads it
        user.password_hash, user.role = "scrypt:new-hash", "admin"
        db.session.commit()
        update = [r for r in rows("users") if r.action == "update"][-1]
        fields = ("password_hash", "role")  # (a new password also moves session_version on)
        assert {k: update.old_values[k] for k in fields} == {"password_hash": "[redacted]", "role": "staff"}
        assert {k: update.new_values[k] for k in fields} == {"password_hash": "[redacted]", "role": "admin"}
