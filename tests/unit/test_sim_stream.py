"""The simulated stream, judged from its bytes against interface §1 (not from the generator's code).

``classify`` below is an independent reading of the contract: it decides what each record is
from its key and value alone. The generator's ``kind`` labels must agree with it, and the shares
of each case must match the configured rates.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from producer_sim.config import ORDER_VARIATIONS, MessRates, Settings
from producer_sim.events import SimRecord, generate_records
from producer_sim.reference import Reference, generate_reference

ORDERS = 10_000
SEED = 2024
TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?P<fraction>\.\d{1,6})?(?P<zone>Z|[+-]\d{2}:\d{2})?$"
)
ORDER_FIELDS = {"order_id", "user_id", "amount", "currency", "created_at", "items", "metadata"}
ITEM_FIELDS = {"sku", "quantity", "price"}


def parse(value: bytes) -> Any:
    return json.loads(value.decode("utf-8"), parse_float=Decimal)


def is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def valid_timestamp(value: Any) -> bool:
    if not isinstance(value, str) or TIMESTAMP.match(value) is None:
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def valid_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("sku"), str)
        and item["sku"] != ""
        and isinstance(item.get("quantity"), int)
        and not isinstance(item["quantity"], bool)
        and item["quantity"] >= 1
        and is_number(item.get("price"))
        and item["price"] >= 0
    )


def reject_reason(value: bytes | None) -> str | None:
    """The interface §1 reject reason of a value, or None if it is a loadable order."""
    if value is None or not value.strip():
        return "empty_payload"
    try:
        doc = parse(value)
    except (UnicodeDecodeError, ValueError):
        return "invalid_json"
    if not isinstance(doc, dict):
        return "not_an_object"
    if not isinstance(doc.get("order_id"), str) or not doc["order_id"]:
        return "missing_order_id"
    if doc.get("created_at") is not None and not valid_timestamp(doc["created_at"]):
        return "invalid_created_at"
    items = doc.get("items")
    if items is not None and (not isinstance(items, list) or not all(map(valid_item, items))):
        return "invalid_item"
    if "amount" in doc and not is_number(doc["amount"]):
        return "invalid_amount"
    return None


def base_case(doc: dict[str, Any], users: set[str], skus: set[str]) -> str:
    """Which tolerated oddity a first-seen valid order shows (``clean`` if none)."""
    for field in ("created_at", "items", "metadata"):
        if field not in doc:
            return f"{field}_missing"
        if doc[field] is None:
            return f"{field}_null"
        if doc[field] in ([], {}):
            return f"{field}_empty"
    for field in ("user_id", "currency"):
        if field not in doc:
            return f"{field}_missing"
    if doc["user_id"] not in users:
        return "late_user"
    lines = doc["items"]
    if any(line["sku"] not in skus for line in lines):
        return "late_sku"
    if len({line["sku"] for line in lines}) < len(lines):
        return "duplicate_sku"
    if set(doc) - ORDER_FIELDS or any(set(line) - ITEM_FIELDS for line in lines):
        return "extra_fields"
    if doc["amount"] != sum(line["quantity"] * line["price"] for line in lines):
        return "amount_mismatch"
    return "clean"


def classify(records: list[SimRecord], reference: Reference) -> list[str]:
    users = {u.user_id for u in reference.users}
    skus = {p.sku for p in reference.products}
    first: dict[str, Any] = {}
    kinds = []
    for record in records:
        reason = reject_reason(record.value)
        if reason is not None:
            kinds.append(f"malformed:{reason}")
            continue
        assert record.value is not None
        doc = parse(record.value)
        if doc["order_id"] in first:
            same = first[doc["order_id"]] == doc  # dicts: key order does not matter
            kinds.append("resend_identical" if same else "resend_conflicting")
            continue
        first[doc["order_id"]] = doc
        kinds.append(base_case(doc, users, skus))
    return kinds


@pytest.fixture(scope="module")
def stream() -> tuple[list[SimRecord], Reference, list[str]]:
    settings = Settings(seed=SEED, orders=ORDERS)
    reference = generate_reference(ORDERS)
    records = list(generate_records(settings, reference))
    return records, reference, classify(records, reference)


def within(count: int, trials: int, p: float) -> bool:
    return abs(count - trials * p) <= 4 * math.sqrt(trials * p * (1 - p)) + 2


def test_labels_match_an_independent_reading_of_the_bytes(stream: Any) -> None:
    """Every record's kind label is what the contract makes of its key and value."""
    records, _, classified = stream
    assert [r.kind for r in records] == classified


@hypothesis_settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**63), orders=st.integers(1, 400), variation=st.floats(0, 1 / 15))
def test_labels_hold_for_any_seed_size_and_rates(seed: int, orders: int, variation: float) -> None:
    """For any seed, size and (high) rates, labels match the bytes and base orders all load."""
    rates = MessRates(
        **dict.fromkeys(ORDER_VARIATIONS, variation),
        resend_identical=0.3, resend_conflicting=0.2, malformed=0.3,
    )  # fmt: skip
    settings = Settings(seed=seed, orders=orders, rates=rates)
    reference = generate_reference(orders)
    records = list(generate_records(settings, reference))
    assert [r.kind for r in records] == classify(records, reference)
    assert sum(not r.kind.startswith(("resend", "malformed")) for r in records) == orders


def test_each_messy_case_has_its_configured_share(stream: Any) -> None:
    """Over 10k orders each case's count is within binomial tolerance of its default rate."""
    _, _, classified = stream
    counts = Counter(classified)
    defaults = MessRates()
    base = sum(n for kind, n in counts.items() if not kind.startswith(("resend", "malformed")))
    assert base == ORDERS
    expected = {
        "amount_mismatch": 0.02,
        "created_at_null": 0.01,
        "created_at_missing": 0.01,
        "items_missing": 0.005,
        "items_null": 0.005,
        "items_empty": 0.005,
        "metadata_missing": 0.01,
        "metadata_null": 0.01,
        "metadata_empty": 0.01,
        "user_id_missing": 0.005,
        "currency_missing": 0.005,
        "late_user": 0.004,
        "late_sku": 0.004,
        "duplicate_sku": 0.01,
        "extra_fields": 0.02,
        "resend_identical": 0.03,
        "resend_conflicting": 0.01,
    }
    for kind, p in expected.items():
        assert getattr(defaults, kind) == p, kind
        assert within(counts[kind], ORDERS, p), (kind, counts[kind])
    malformed = sum(n for kind, n in counts.items() if kind.startswith("malformed:"))
    assert within(malformed, ORDERS, 0.01), malformed
    reasons = {kind.removeprefix("malformed:") for kind in counts if kind.startswith("malformed:")}
    assert reasons == {
        "empty_payload",
        "invalid_json",
        "not_an_object",
        "missing_order_id",
        "invalid_created_at",
        "invalid_item",
        "invalid_amount",
    }
    assert counts["clean"] > 0.8 * ORDERS


def malformed_variant(value: bytes | None) -> str:
    """A finer name for a malformed value, to check that every variant of a reason shows up."""
    if value is None:
        return "tombstone"
    if not value.strip():
        return "empty" if value == b"" else "blank"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    try:
        doc = json.loads(text, parse_float=Decimal)
    except ValueError:
        return "truncated" if text.startswith('{"order_id"') else "not_json"
    if not isinstance(doc, dict):
        return type(doc).__name__
    if "order_id" not in doc:
        return "order_id_missing"
    if not isinstance(doc["order_id"], str) or not doc["order_id"]:
        return f"order_id_{type(doc['order_id']).__name__}:{doc['order_id']!r}"
    if doc.get("created_at") is not None and not valid_timestamp(doc["created_at"]):
        return f"created_at:{doc['created_at']!r}"
    items = doc.get("items")
    if not isinstance(items, list):
        return f"items_{type(items).__name__}"
    for item in items:
        if not isinstance(item, dict):
            return "item_not_object"
        for field in ("sku", "quantity", "price"):
            if field not in item:
                return f"{field}_missing"
        sku, quantity, price = item["sku"], item["quantity"], item["price"]
        if not isinstance(sku, str) or not sku:
            return f"sku:{sku!r}"
        if type(quantity) is not int or quantity < 1:
            return f"quantity:{quantity!r}"
        if not is_number(price) or price < 0:
            return f"price:{price!r}"
    return f"amount:{doc['amount']!r}"


def test_malformed_records_cover_every_variant_of_every_reason() -> None:
    """Tombstones, blanks, non-UTF-8, truncated JSON, arrays, bad ids, dates, items and amounts."""
    settings = Settings(seed=SEED, orders=30_000, rates=MessRates(malformed=0.02))
    variants = {
        malformed_variant(r.value)
        for r in generate_records(settings)
        if r.kind.startswith("malformed:")
    }
    assert variants >= {
        "tombstone",
        "empty",
        "blank",
        "not_utf8",
        "truncated",
        "not_json",
        "list",
        "str",
        "int",
        "order_id_missing",
        "order_id_str:''",
        "order_id_int:12345",
        "order_id_NoneType:None",
        "created_at:'yesterday'",
        "created_at:'2025-13-45T10:00:00Z'",
        "created_at:1755700990",
        "items_dict",
        "items_str",
        "item_not_object",
        "sku_missing",
        "sku:''",
        "sku:None",
        "quantity:0",
        "quantity:-1",
        "quantity:Decimal('1.50')",
        "quantity:'2'",
        "quantity:True",
        "price:-1",
        "price:'9.99'",
        "amount:True",
    }, variants
    assert any(
        v.startswith("amount:'") and re.fullmatch(r"amount:'\d+\.\d{2}'", v) for v in variants
    )


def test_keys_are_the_order_ids_and_malformed_ids_are_fresh(stream: Any) -> None:
    """Records with an order_id are keyed by it; others have no key; reject ids are never reused."""
    records, _, classified = stream
    ids_by_record: list[str | None] = []
    for record in records:
        try:
            doc = parse(record.value) if record.value else None
        except (UnicodeDecodeError, ValueError):
            doc = None
        oid = doc.get("order_id") if isinstance(doc, dict) else None
        ids_by_record.append(oid if isinstance(oid, str) and oid else None)
    for record, oid, kind in zip(records, ids_by_record, classified, strict=True):
        if oid is not None:
            assert record.key == oid.encode(), (record, kind)
        elif kind != "malformed:invalid_json":
            assert record.key is None, (record, kind)
    uses = Counter(oid for oid in ids_by_record if oid is not None)
    for oid, kind in zip(ids_by_record, classified, strict=True):
        if kind.startswith("malformed:") and oid is not None:
            assert uses[oid] == 1, oid


def test_identical_resends_are_spelled_differently_some_of_the_time(stream: Any) -> None:
    """Re-sends come at once and thousands of records later, with other blanks, order, escapes."""
    records, _, classified = stream
    first_at: dict[bytes, int] = {}
    distances, exact, blanks, key_order, escaped = [], 0, 0, 0, 0
    for index, (record, kind) in enumerate(zip(records, classified, strict=True)):
        if kind in ("resend_identical", "resend_conflicting") and record.key is not None:
            distances.append(index - first_at[record.key])
        if kind != "resend_identical":
            if record.key is not None and record.key not in first_at:
                first_at[record.key] = index
            continue
        assert record.value is not None and record.key is not None
        original = records[first_at[record.key]].value
        assert original is not None
        if record.value == original:
            exact += 1
            continue
        text = record.value.decode()
        if b"\\u" in record.value and not original.isascii():
            escaped += 1
        if text != text.strip() or ", " in text or "\n" in text:
            blanks += 1
        if list(json.loads(text)) != list(json.loads(original)):
            key_order += 1
    assert min(exact, blanks, key_order, escaped) > 0, (exact, blanks, key_order, escaped)
    assert min(distances) == 1
    assert max(distances) >= 1_000
    assert sum(d >= 1_000 for d in distances) > 0.3 * len(distances)


def test_orders_look_like_a_shop(stream: Any) -> None:
    """Mixed ISO-8601 forms, 2-decimal money, few items and units, four channels, some promos."""
    records, _, classified = stream
    docs = [
        parse(r.value)
        for r, k in zip(records, classified, strict=True)
        if r.value and not k.startswith(("malformed", "resend"))
    ]
    stamps = [d["created_at"] for d in docs if d.get("created_at") is not None]
    forms = Counter()
    for stamp in stamps:
        match = TIMESTAMP.match(stamp)
        assert match is not None and valid_timestamp(stamp), stamp
        zone = match["zone"] or "none"
        forms["Z" if zone == "Z" else "offset" if zone != "none" else "none"] += 1
        forms[f"fraction{len(match['fraction'] or '.') - 1}"] += 1
    assert all(forms[f] > 0 for f in ("Z", "offset", "none", "fraction0", "fraction3", "fraction6"))
    assert forms["fraction1"] + forms["fraction2"] > 0
    money = re.compile(rb'"(?:price|amount)":(-?[0-9.eE+-]+)')
    for record, kind in zip(records, classified, strict=True):
        if kind in ("clean", "amount_mismatch", "late_sku", "duplicate_sku"):
            assert record.value is not None
            for number in money.findall(record.value):
                assert re.fullmatch(rb"\d+\.\d{2}", number), (number, record.value)
    lines = [d["items"] for d in docs if isinstance(d.get("items"), list) and d["items"]]
    sizes = Counter(len(items) for items in lines)
    assert sum(sizes[n] for n in (1, 2, 3)) > 0.85 * len(lines) and max(sizes) >= 4
    quantities = Counter(item["quantity"] for items in lines for item in items)
    assert (quantities[1] + quantities[2]) > 0.85 * sum(quantities.values())
    metadata = [d["metadata"] for d in docs if d.get("metadata")]
    assert {m["source"] for m in metadata} == {"web", "app", "marketplace", "store"}
    promos = Counter(m["promo"] is None for m in metadata)
    assert promos[True] > promos[False] > 0
    assert any(not r.value.isascii() for r in records if r.value)
    assert {d["currency"] for d in docs if "currency" in d} >= {"USD", "EUR"}
