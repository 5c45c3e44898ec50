"""The Chinese catalog: complete, compiled, and used by default; English on request."""

import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from rest_framework.test import APIClient

from tests import factories

PO = Path(django_settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
PLACEHOLDER = re.compile(r"%\(\w+\)[-+ #0-9.]*[sdif]|%[sdif]|%%|\{\w*\}")


def _unquote(line: str) -> str:
    body = line.strip()[1:-1]
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), "\\" + m.group(1)), body)


def parse_po(text: str) -> list[dict]:
    """Entries as {"flags", "obsolete", "msgctxt", "msgid", "msgid_plural", "msgstr[0]", ...}."""
    entries = []
    for block in re.split(r"\n\s*\n", text.strip()):
        entry: dict = {"flags": set(), "obsolete": False}
        key = None
        for line in block.splitlines():
            if line.startswith("#~"):
                entry["obsolete"] = True
            elif line.startswith("#,"):
                entry["flags"].update(f.strip() for f in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                entry[key] += _unquote(line)
            else:
                key, _, rest = line.partition(" ")
                entry[key] = _unquote(rest)
        entries.append(entry)
    return entries


@pytest.fixture(scope="module")
def catalog() -> list[dict]:
    entries = parse_po(PO.read_text(encoding="utf-8"))
    assert entries[0].get("msgid") == "", "the header comes first"
    return entries


@pytest.fixture
def zh(settings):
    settings.LANGUAGE_CODE = "zh-hans"  # the product's default; tests/conftest.py sets "en"


# --- the catalog ------------------------------------------------------------------------------


def test_catalog_has_no_untranslated_fuzzy_or_obsolete_entries(catalog):
    header, entries = catalog[0], catalog[1:]
    assert len(entries) > 500  # the parser read the real catalog
    assert "Plural-Forms: nplurals=1; plural=0;" in header["msgstr"]
    assert "fuzzy" not in header["flags"]
    problems = []
    for e in entries:
        label = e.get("msgid", "?")[:60]
        if e["obsolete"]:
            problems.append(f"obsolete: {label}")
        elif "fuzzy" in e["flags"]:
            problems.append(f"fuzzy: {label}")
        elif "msgid_plural" in e:
            forms = [k for k in e if k.startswith("msgstr[")]
            if forms != ["msgstr[0]"] or not e["msgstr[0]"]:
                problems.append(f"plural forms (zh has one): {label}")
        elif not e.get("msgstr"):
            problems.append(f"untranslated: {label}")
    assert problems == []


def test_translations_keep_every_placeholder(catalog):
    problems = []
    for e in catalog[1:]:
        source = sorted(PLACEHOLDER.findall(e["msgid"]))
        for key in (k for k in e if k.startswith("msgstr")):
            if sorted(PLACEHOLDER.findall(e[key])) != source:
                problems.append(f"{e['msgid'][:60]!r} -> {e[key]!r}")
    assert problems == []


def test_compiled_catalog_matches_the_po_file(catalog):
    """The .mo is committed (the app runs without gettext tools); it must not lag the .po."""
    with MO.open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    stale = []
    for e in catalog[1:]:
        key = (e["msgctxt"] + "\x04" if "msgctxt" in e else "") + e["msgid"]
        if "msgid_plural" in e:
            got = compiled._catalog.get((key, 0))
            want = e["msgstr[0]"]
        else:
            got, want = compiled._catalog.get(key), e["msgstr"]
        if got != want:
            stale.append(e["msgid"][:60])
    assert stale == [], "run `make messages` (compilemessages) and commit the .mo"


# --- pages ------------------------------------------------------------------------------------


def test_home_and_login_pages_are_chinese_by_default_and_english_on_request(db, zh):
    home = Client().get("/")
    assert home.status_code == 200
    assert '<html lang="zh-hans">' in home.content.decode()
    assert "校园跑腿" in home.content.decode()
    assert "Campus Errand" not in home.content.decode().split("<body", 1)[1]

    login = Client().get("/accounts/login/")
    assert "登录" in login.content.decode()

    english = Client(HTTP_ACCEPT_LANGUAGE="en").get("/accounts/login/").content.decode()
    assert '<html lang="en">' in english and "Log in" in english and "登录" not in english


def test_open_order_page_shows_its_status_in_chinese_by_default(zh, student, campus):
    order = factories.make_order(customer=student, campus=campus)
    client = Client()
    client.force_login(student)

    page = client.get(f"/orders/{order.number}/").content.decode()
    assert "待接单" in page and "Waiting for a rider" not in page
    assert "取消订单" in page

    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = client.get(f"/orders/{order.number}/").content.decode()
    assert "Waiting for a rider" in page and "待接单" not in page


def test_rider_board_is_chinese_by_default(zh, rider_male, student, campus):
    factories.make_order(customer=student, campus=campus)
    client = Client()
    client.force_login(rider_male)

    page = client.get("/rider/").content.decode()
    assert "你已上线" in page and "待接订单" in page and "信用分" in page
    assert "You are online" not in page

    english = Client(HTTP_ACCEPT_LANGUAGE="en")
    english.force_login(rider_male)
    page = english.get("/rider/").content.decode()
    assert "You are online" in page and "Open orders" in page


def test_language_switch_remembers_english(db, zh):
    client = Client()
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "Log in" in client.get("/accounts/login/").content.decode()


# --- API errors -------------------------------------------------------------------------------


def test_api_error_is_chinese_by_default_and_english_on_request(zh, order, rider_male, campus):
    other = factories.make_rider(campus, gender="male")
    first = APIClient()
    first.force_authenticate(rider_male)
    assert first.post(f"/api/orders/{order.number}/accept/").status_code == 200

    second = APIClient()
    second.force_authenticate(other)
    response = second.post(f"/api/orders/{order.number}/accept/")
    assert response.status_code == 409
    assert response.json() == {"detail": "该订单已被其他骑手接走。", "code": "taken"}

    response = second.post(f"/api/orders/{order.number}/accept/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.json()["detail"] == "Another rider has already taken this order."


def test_api_validation_message_is_chinese_by_default(zh, student):
    client = APIClient()
    client.force_authenticate(student)
    response = client.post("/api/orders/", {}, format="json")
    assert response.status_code == 400
    assert "此项为必填项。" in str(response.json())


def test_api_field_message_follows_each_request_language(zh, student, campus):
    """Messages defined at import time must be lazy, or every user gets one language."""
    client = APIClient()
    client.force_authenticate(student)
    payload = {"kind": "parcel", "details": ["not", "an", "object"]}

    default = client.post("/api/orders/quote/", payload, format="json")
    english = client.post("/api/orders/quote/", payload, format="json", HTTP_ACCEPT_LANGUAGE="en")

    assert default.status_code == english.status_code == 400
    assert "请以 JSON 对象的形式提供详情。" in str(default.json())
    assert "Give the details as a JSON object." in str(english.json())
