"""users.csv and products.csv: interface §2 format, realistic content, consistent with events."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from producer_sim.config import Settings
from producer_sim.events import generate_records
from producer_sim.reference import generate_reference, write_reference

# ISO 3166-1 alpha-2, officially assigned codes.
# fmt: off
ISO_COUNTRIES = {
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX",
    "AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ",
    "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK",
    "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM",
    "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR",
    "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS",
    "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN",
    "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN",
    "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV",
    "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ",
    "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI",
    "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM",
    "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC",
    "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV",
    "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR",
    "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
}
# fmt: on
UPDATED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
EMAIL = re.compile(r"^[a-z0-9][a-z0-9._-]*@[a-z0-9-]+(\.[a-z0-9-]+)+$")
ORDERS = 10_000
SEED = 77


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("reference")
    write_reference(generate_reference(ORDERS), directory)
    return directory


def read_rows(path: Path) -> tuple[bytes, list[list[str]]]:
    raw = path.read_bytes()
    return raw, list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))


def test_users_csv_follows_the_contract_and_looks_real(csv_dir: Path) -> None:
    """Exact header, CRLF rows, unique ids, ISO countries, dates, non-ASCII names, ASCII emails."""
    raw, rows = read_rows(csv_dir / "users.csv")
    assert raw.startswith(b"user_id,name,email,country,signup_date,updated_at\r\n")
    header, body = rows[0], rows[1:]
    assert header == ["user_id", "name", "email", "country", "signup_date", "updated_at"]
    assert all(len(row) == 6 for row in body)
    assert len({row[0] for row in body}) == len(body)
    countries = {row[3] for row in body}
    assert countries <= ISO_COUNTRIES and len(countries) >= 30
    for _, name, email, _, signup, updated_at in body:
        assert name.strip() == name and name
        assert EMAIL.match(email), email
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", signup)
        assert dt.date(2015, 1, 1) <= dt.date.fromisoformat(signup) < dt.date(2025, 8, 1)
        # The version in effect at the end of the default 28 days: signed up before it took
        # effect, and it took effect before the span ended.
        assert UPDATED_AT.fullmatch(updated_at), updated_at
        assert signup <= updated_at[:10] and updated_at < "2025-08-29T00:00:00Z"
    names = [row[1] for row in body]
    assert sum(not n.isascii() for n in names) > 0.2 * len(names)
    scripts = "".join(names)
    for sample in ("é", "ü", "ł", "ø", "山", "Ł"):
        assert sample in scripts, sample


def test_products_csv_follows_the_contract_with_rfc4180_quoting(csv_dir: Path) -> None:
    """Exact header, quoted commas and quotes round-trip, categories, prices with 2 decimals."""
    raw, rows = read_rows(csv_dir / "products.csv")
    assert raw.startswith(b"sku,name,category,list_price,updated_at\r\n")
    body = rows[1:]
    assert all(len(row) == 5 for row in body)
    assert all(UPDATED_AT.fullmatch(row[4]) and row[4] < "2025-08-29" for row in body)
    assert len({row[0] for row in body}) == len(body)
    assert any("," in row[1] for row in body) and any('"' in row[1] for row in body)
    assert b'""' in raw  # an embedded quote is doubled, inside a quoted field
    assert len({row[2] for row in body}) >= 5
    for row in body:
        assert re.fullmatch(r"\d+\.\d{2}", row[3]), row
        assert Decimal(row[3]) > 0


def test_sizes_scale_with_the_number_of_orders() -> None:
    """More orders mean more users and products, in shop-like proportions."""
    small, medium, large = (generate_reference(n) for n in (1_000, 10_000, 100_000))
    assert len(small.users) < len(medium.users) < len(large.users)
    assert len(small.products) < len(medium.products) < len(large.products)
    for reference, orders in ((medium, 10_000), (large, 100_000)):
        assert 0.1 <= len(reference.users) / orders <= 0.5
        assert 0.01 <= len(reference.products) / orders <= 0.1
    tiny = generate_reference(10)
    assert len(tiny.users) >= 10 and len(tiny.products) >= 10


def test_csvs_cover_the_events_except_the_few_late_ones(csv_dir: Path, tmp_path: Path) -> None:
    """Every referenced user and sku is in the CSVs unless it is late; coverage ≥ 95%, late ≤ 1%."""
    users = {row[0] for row in read_rows(csv_dir / "users.csv")[1][1:]}
    skus = {row[0] for row in read_rows(csv_dir / "products.csv")[1][1:]}
    write_reference(generate_reference(ORDERS), tmp_path, late=True)
    late_users = {row[0] for row in read_rows(tmp_path / "users.csv")[1][1:]}
    late_skus = {row[0] for row in read_rows(tmp_path / "products.csv")[1][1:]}
    assert not late_users & users and not late_skus & skus
    ref_users: set[str] = set()
    ref_skus: set[str] = set()
    orders = orders_with_late = 0
    for record in generate_records(Settings(seed=SEED, orders=ORDERS)):
        if record.kind.startswith(("malformed", "resend")):
            continue
        assert record.value is not None
        doc = json.loads(record.value)
        orders += 1
        order_users = {doc["user_id"]} if "user_id" in doc else set()
        order_skus = {line["sku"] for line in doc.get("items") or []}
        ref_users |= order_users
        ref_skus |= order_skus
        orders_with_late += bool(order_users - users or order_skus - skus)
    assert orders == ORDERS
    referenced = len(ref_users) + len(ref_skus)
    missing_users, missing_skus = ref_users - users, ref_skus - skus
    assert missing_users <= late_users and missing_skus <= late_skus
    assert missing_users and missing_skus  # the late-arriving case is really there
    missing = len(missing_users) + len(missing_skus)
    assert (referenced - missing) / referenced >= 0.95
    assert missing / referenced <= 0.01
    assert orders_with_late / orders <= 0.01
