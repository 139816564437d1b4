"""Which reference deliveries become versions (CONTRACT §2: the same version delivered twice is
stored once; a later delivery with other content replaces an earlier one; a CSV row without
updated_at takes effect when first loaded unless it equals the current version)."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl

from consumer.core.records import Records
from consumer.core.refbatch import TopicRecords, plan_versions, reference_batch
from consumer.core.refdata import RATES, USERS

NOW = datetime(2025, 9, 1, 12, 0)
T1, T2 = "2025-08-01T00:00:00Z", "2025-08-02T00:00:00Z"


def user(user_id: str, country: str, at: str) -> bytes:
    return json.dumps({"user_id": user_id, "country": country, "updated_at": at}).encode()


def batch_rows(kind: str, values: list[bytes], topic: str = "users") -> pl.DataFrame:
    records = Records(values, [None] * len(values), [0] * len(values), list(range(len(values))))
    return reference_batch([TopicRecords(kind, topic, "tid", records)]).rows[kind]


def nothing_stored(kind: str) -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "user_id": pl.String,
            "updated_at": pl.Datetime("us"),
            "name": pl.String,
            "email": pl.String,
            "country": pl.String,
            "signup_date": pl.Date,
        }
    )


def test_a_version_delivered_twice_in_one_batch_is_stored_once_and_counted() -> None:
    rows = batch_rows(USERS, [user("u1", "DE", T1), user("u1", "DE", T1), user("u1", "FR", T2)])
    plan = plan_versions(USERS, rows, nothing_stored(USERS), nothing_stored(USERS), NOW)
    assert plan.stored.select("country", "offset").rows() == [("DE", 0), ("FR", 2)]
    assert plan.duplicates.select("offset", "key").rows() == [(1, "u1")]


def test_a_delivery_equal_to_the_stored_latest_of_its_instant_is_a_redelivery() -> None:
    stored = pl.DataFrame(
        {
            "user_id": ["u1"],
            "updated_at": [datetime(2025, 8, 1)],
            "name": [None],
            "email": [None],
            "country": ["DE"],
            "signup_date": [None],
        },
        schema=nothing_stored(USERS).schema,
    )
    rows = batch_rows(USERS, [user("u1", "DE", T1), user("u1", "FR", T1), user("u1", "DE", T1)])
    plan = plan_versions(USERS, rows, stored, nothing_stored(USERS), NOW)
    # offset 0 repeats what is stored; 1 corrects it (another content, same instant); 2 goes
    # back to DE after the correction: a new delivery again, not a repeat of the stored one.
    assert plan.duplicates["offset"].to_list() == [0]
    assert plan.stored.select("country", "offset").rows() == [("FR", 1), ("DE", 2)]


def test_a_csv_row_without_updated_at_takes_effect_now_unless_it_is_current() -> None:
    frame = pl.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "name": [None, None],
            "email": [None, None],
            "country": ["DE", "FR"],
            "signup_date": [None, None],
            "updated_at": [None, None],
        },
        schema=nothing_stored(USERS).schema,
    )
    rows = reference_batch([], [(USERS, "users.csv", frame)]).rows[USERS]
    current = frame.filter(pl.col("user_id") == "u1").drop("updated_at")  # u1 is DE already
    plan = plan_versions(USERS, rows, nothing_stored(USERS), current, NOW)
    assert plan.stored.select("user_id", "updated_at", "file").rows() == [("u2", NOW, "users.csv")]
    assert plan.duplicates.is_empty()  # CSV rows are not topic records: nothing to account for


def test_rates_repeat_by_day_and_currency() -> None:
    rates = [
        b'{"date": "2025-08-01", "currency": "EUR", "rate": 1.1}',
        b'{"date": "2025-08-01", "currency": "EUR", "rate": 1.10}',  # the same value
        b'{"date": "2025-08-01", "currency": "GBP", "rate": 1.1}',
        b'{"date": "2025-08-01", "currency": "EUR", "rate": 1.2}',  # a correction
    ]
    rows = batch_rows(RATES, rates, topic="fx")
    nothing = pl.DataFrame(schema={"currency": pl.String, "date": pl.Date, "rate": pl.Float64})
    plan = plan_versions(RATES, rows, nothing, pl.DataFrame(), NOW)
    assert plan.stored["offset"].to_list() == [0, 2, 3]
    assert plan.duplicates.select("offset", "key").rows() == [(1, "EUR:2025-08-01")]


def test_rejects_keep_topic_position_key_and_raw_value() -> None:
    records = Records([b"{", user("u1", "DE", T1)], [b"k", None], [3, 3], [7, 8])
    batch = reference_batch([TopicRecords(USERS, "users-cdc", "id-1", records)])
    assert batch.rejects.select(
        "topic", "topic_id", "partition", "offset", "reason", "key", "value", "value_text"
    ).rows() == [("users-cdc", "id-1", 3, 7, "invalid_reference", b"k", b"{", "{")]
    assert batch.rows[USERS].select("topic", "partition", "offset", "arrival").rows() == [
        ("users-cdc", 3, 8, 1)
    ]
