"""API keys as plain functions: their form (`mdk_<8 hex>_<secret>`), the stored SHA-256, creation's refusals and the
lookup that accepts only the enabled key whose whole text matches."""
from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from api.keys import create_api_key, find_key, hash_key, new_key, split_key
from extensions import db
from models import ApiKey
from tests.factories import client


def test_the_hash_is_the_hex_sha256_of_the_whole_key():
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_key("mdk_0123abcd_é") == hashlib.sha256("mdk_0123abcd_é".encode()).hexdigest()


@pytest.mark.parametrize(("raw", "prefix"), [
    ("mdk_0123abcd_secret", "mdk_0123abcd"),
    ("mdk_0123abcd_se_cr_et", "mdk_0123abcd"),  # token_urlsafe secrets may hold underscores
    ("mdk_0123abcd_", None),  # no secret
    ("mdk_0123abcd", None),
    ("mdk_0123abc_secret", None),  # 7 characters
    ("mdk_0123abcde_secret", None),  # 9 characters
    ("mdx_0123abcd_secret", None),
    ("MDK_0123abcd_secret", None),
    ("", None),
])
def test_the_display_prefix_is_the_mark_and_eight_characters(raw, prefix):
    assert split_key(raw) == prefix


def test_a_new_key_is_mark_eight_hex_and_a_43_character_secret_with_its_hash():
    raw, prefix, digest = new_key()
    assert re.fullmatch(r"mdk_[0-9a-f]{8}", prefix)
    assert raw.startswith(prefix + "_") and len(raw) == len(prefix) + 1 + 43
    assert split_key(raw) == prefix and digest == hash_key(raw)
    assert new_key()[0] != raw and new_key()[1] != prefix


def test_creating_a_key_stores_its_hash_and_prefix_and_returns_the_raw_key_once(app):
    with app.app_context():
        acme = client("Acme")
        db.session.commit()
        key, raw = create_api_key("  collector  ", "ingest", acme.id)
        db.session.rollback()  # committed by create_api_key
        stored = db.session.scalar(select(ApiKey))
        assert (stored.id, stored.name, stored.role, stored.client_id, stored.enabled) == (
            key.id, "collector", "ingest", acme.id, True)
        assert (stored.prefix, stored.key_hash) == (split_key(raw), hash_key(raw))
        unscoped, _ = create_api_key("reader", "readonly")
        assert unscoped.client_id is None and unscoped.prefix != stored.prefix


@pytest.mark.parametrize(("name", "role", "client_id", "message"), [
    ("", "ingest", None, "name must not be empty"),
    ("   ", "ingest", None, "name must not be empty"),
    (None, "ingest", None, "name must not be empty"),
    ("collector", "root", None, "role must be one of admin, ingest, readonly"),
    ("collector", "ingest", 999, "no client with id 999"),
])
def test_creating_a_key_refuses_a_blank_name_an_unknown_role_or_client(app, name, role, client_id, message):
    with app.app_context():
        with pytest.raises(ValueError) as refused:
            create_api_key(name, role, client_id)
        assert str(refused.value) == message
        assert db.session.scalar(select(ApiKey)) is None


def test_a_key_is_found_only_by_its_whole_text_while_enabled(app):
    with app.app_context():
        key, raw = create_api_key("collector", "ingest")
        other, other_raw = create_api_key("other", "readonly")
        assert find_key(raw).id == key.id and find_key(other_raw).id == other.id
        # the right prefix with another secret, a secret cut short or lengthened, another key's secret
        assert find_key(key.prefix + "_wrong") is None
        assert find_key(raw[:-1]) is None and find_key(raw + "x") is None
        assert find_key(key.prefix + other_raw[len(other.prefix):]) is None
        assert find_key("mdk_00000000_" + raw.split("_", 2)[2]) is None  # no key has that prefix
        assert find_key(key.prefix) is None and find_key("nonsense") is None
        key.enabled = False
        db.session.commit()
        assert find_key(raw) is None and find_key(other_raw).id == other.id
