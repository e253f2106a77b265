"""Signing secrets: HMAC-SHA256 of the raw body, secrets sealed with a key derived from SECRET_KEY; webhook URLs."""
from __future__ import annotations

import pytest

from webhooks.signing import SecretUnreadable, new_secret, open_secret, seal_secret, signature, signature_matches
from webhooks.urls import check_webhook_url


def test_the_signature_is_hex_hmac_sha256_of_the_raw_body():
    # RFC 4231 test case 1: key 0x0b x 20, data "Hi There"
    assert signature("\x0b" * 20, b"Hi There") == \
        "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    assert signature_matches("\x0b" * 20, b"Hi There", signature("\x0b" * 20, b"Hi There"))
    assert not signature_matches("\x0b" * 20, b"Hi There!", signature("\x0b" * 20, b"Hi There"))
    assert not signature_matches("\x0b" * 20, b"Hi There", None)


def test_a_secret_is_sealed_for_storage_and_opens_only_with_the_same_secret_key():
    raw = new_secret()
    assert raw.startswith("whsec_") and len(raw) >= 40 and new_secret() != raw
    sealed = seal_secret(raw, "key-one")
    assert raw not in sealed and raw[6:] not in sealed
    assert open_secret(sealed, "key-one") == raw
    with pytest.raises(SecretUnreadable, match="SECRET_KEY"):
        open_secret(sealed, "key-two")
    with pytest.raises(SecretUnreadable):
        open_secret("not a token", "key-one")


@pytest.mark.parametrize("url", ["https://hooks.example.com/meterdesk", "http://127.0.0.1:8080/hook?x=1",
                                 "HTTPS://EXAMPLE.COM", "http://[::1]:9000/h"])
def test_http_and_https_urls_are_accepted(url):
    assert check_webhook_url(f"  {url} ") == url


@pytest.mark.parametrize("url, message", [
    ("", "required"),
    ("ftp://example.com/x", "http:// or https://"),
    ("javascript:alert(1)", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("example.com/hook", "http:// or https://"),
    ("https:///nohost", "name a host"),
    ("https://user:pw@example.com/", "user name or password"),
    ("https://example.com:99999/", "not a valid URL"),
    ("https://example.com:0/", "port"),
    ("https://exa mple.com/", "spaces"),
    ("https://example.com/\x00", "control"),
    ("https://example.com/#frag", "fragment"),
    ("https://example.com/" + "a" * 2000, "longer than 2000"),
])
def test_other_urls_are_refused_with_the_reason(url, message):
    with pytest.raises(ValueError, match=message):
        check_webhook_url(url)
