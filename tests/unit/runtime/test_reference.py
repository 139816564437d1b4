"""Reference CSVs (interface §2): what is accepted, each kind of bad row reported with its line,
duplicate keys, and noticing a changed file."""

from __future__ import annotations

import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from consumer.errors import ConfigError
from consumer.runtime.reference import ReferenceFiles, read_products, read_rates, read_users

USERS_HEADER = "user_id,name,email,country,signup_date\n"
PRODUCTS_HEADER = "sku,name,category,list_price\n"


def csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_users_are_read_with_dates_and_empty_fields_as_null(tmp_path: Path) -> None:
    """Valid rows load; empty fields (after trimming) are NULL, dates are dates, and RFC 4180
    quoting keeps a comma inside a name."""
    path = csv(
        tmp_path,
        "users.csv",
        USERS_HEADER + 'u-1,"Lovelace, Ada",ada@example.com,GB,1815-12-10\nu-2, ,,,\n',
    )
    users = read_users(path)
    assert users.rows() == [  # without an updated_at column, each takes effect when loaded
        ("u-1", "Lovelace, Ada", "ada@example.com", "GB", date(1815, 12, 10), None),
        ("u-2", None, None, None, None, None),
    ]


def test_products_are_read_with_exact_decimal_prices(tmp_path: Path) -> None:
    """list_price is an exact decimal (no binary float), or NULL when empty."""
    path = csv(tmp_path, "products.csv", PRODUCTS_HEADER + "p-1,Pen,office,0.1\np-2,Cup,,\n")
    products = read_products(path)
    assert products["list_price"].to_list() == [Decimal("0.1"), None]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (USERS_HEADER + "u-1,A,a@x,GB,2024-01-01\nu-2,B,b@x,GB,01/02/2024\n", 3, "signup_date"),
        (USERS_HEADER + "u-1,A,a@x,gb,\n", 2, "country"),
        (USERS_HEADER + "u-1,A,a@x,GBR,\n", 2, "country"),
        (USERS_HEADER + "u-1,A,a@x,GB,\n ,B,b@x,FR,\n", 3, "user_id"),
    ],
    ids=["date", "lowercase-country", "alpha-3-country", "empty-key"],
)
def test_a_bad_user_row_is_reported_with_its_line_and_column(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    """The first bad row is named by file line (header is line 1) and column."""
    path = csv(tmp_path, "users.csv", text)
    with pytest.raises(ConfigError, match=f"line {line}: {words}") as caught:
        read_users(path)
    assert str(path) in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("price", ["-1", "1.23456", "ten", "1e3"])
def test_a_bad_price_is_reported(tmp_path: Path, price: str) -> None:
    """A price that is not a decimal >= 0 with at most 4 decimals is refused."""
    path = csv(tmp_path, "products.csv", PRODUCTS_HEADER + f"p-1,Pen,office,{price}\n")
    with pytest.raises(ConfigError, match="line 2: list_price"):
        read_products(path)


def test_the_count_of_further_bad_rows_is_given(tmp_path: Path) -> None:
    """With several bad rows, the message names the first and counts the others."""
    body = "".join(f"p-{i},x,y,bad\n" for i in range(4))
    path = csv(tmp_path, "products.csv", PRODUCTS_HEADER + body)
    with pytest.raises(ConfigError, match=r"line 2: .*\(and 3 more rows\)"):
        read_products(path)


def test_a_missing_column_names_the_expected_header(tmp_path: Path) -> None:
    """A header without a required column is refused, naming it and the full header."""
    path = csv(tmp_path, "users.csv", "user_id,name,email\nu-1,A,a@x\n")
    with pytest.raises(ConfigError, match=r"missing column.* country, signup_date") as caught:
        read_users(path)
    assert USERS_HEADER.strip() in str(caught.value)


def test_a_file_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    """Latin-1 bytes are ConfigError naming the file, as one line."""
    path = tmp_path / "users.csv"
    path.write_bytes(USERS_HEADER.encode() + "u-1,Zoë,z@x,FR,\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8") as caught:
        read_users(path)
    assert "\n" not in str(caught.value)


def test_a_repeated_key_keeps_its_last_row(tmp_path: Path) -> None:
    """Two rows of one user_id: the later one wins, once, and order is kept otherwise."""
    path = csv(
        tmp_path,
        "users.csv",
        USERS_HEADER + "u-1,Old,,,\nu-2,Two,,,\nu-1,New,,,\n",
    )
    users = read_users(path)
    assert sorted(users.select("user_id", "name").rows()) == [("u-1", "New"), ("u-2", "Two")]


def test_no_files_means_no_reference(tmp_path: Path) -> None:
    """Without CSVs there is nothing to read and nothing ever changes."""
    files = ReferenceFiles(None, None, 1e-9)
    assert files.read() is None
    assert files.changed() is False


def test_only_the_given_file_is_read(tmp_path: Path) -> None:
    """With only products.csv, only products are read."""
    products = csv(tmp_path, "products.csv", PRODUCTS_HEADER + "p-1,Pen,office,1\n")
    reference = ReferenceFiles(None, products, 30).read()
    assert reference is not None
    assert [(kind, name, frame.height) for kind, name, frame in reference.files] == [
        ("products", "products.csv", 1)
    ]


def test_a_users_file_with_updated_at_holds_versions(tmp_path: Path) -> None:
    """Two rows of one user at two instants are two versions (the same row twice is one);
    updated_at is ISO-8601, UTC unless it has an offset."""
    path = csv(
        tmp_path,
        "users.csv",
        USERS_HEADER.rstrip("\n") + ",updated_at\n"
        "u-1,A,,DE,,2025-08-01T00:00:00Z\n"
        "u-1,A,,FR,,2025-08-05T12:00:00+02:00\n"
        "u-1,A,,FR,,2025-08-05T12:00:00+02:00\n",
    )
    assert read_users(path).select("country", "updated_at").rows() == [
        ("DE", datetime(2025, 8, 1)),
        ("FR", datetime(2025, 8, 5, 10)),
    ]
    bad = csv(tmp_path, "bad.csv", USERS_HEADER.rstrip("\n") + ",updated_at\nu-1,A,,DE,,soon\n")
    with pytest.raises(ConfigError, match="line 2: updated_at 'soon'"):
        read_users(bad)


def test_an_fx_rates_file_is_read_with_exact_rates_and_checked(tmp_path: Path) -> None:
    path = csv(tmp_path, "fx.csv", "date,currency,rate\n2025-08-01,EUR,1.0912\n"
               "2025-08-01,USD,1\n")  # fmt: skip
    assert read_rates(path).rows() == [
        (date(2025, 8, 1), "EUR", Decimal("1.0912")),
        (date(2025, 8, 1), "USD", Decimal(1)),
    ]
    for text, words in (
        ("2025-08-01,EUR,0\n", "rate"),
        ("2025-08-01,EUR,-1\n", "rate"),
        ("2025-08-01,EUR,1e3\n", "rate"),
        ("2025-08-01,USD,1.1\n", "USD rate must be 1"),
        ("2025-08-01,eur,1.1\n", "currency"),
        ("01/08/2025,EUR,1.1\n", "date"),
    ):
        bad = csv(tmp_path, "bad-fx.csv", "date,currency,rate\n" + text)
        with pytest.raises(ConfigError, match=words):
            read_rates(bad)


def test_a_file_changed_after_loading_is_noticed(tmp_path: Path) -> None:
    """changed() is False right after loading and True once a file's mtime moves."""
    users = csv(tmp_path, "users.csv", USERS_HEADER + "u-1,A,,,\n")
    products = csv(tmp_path, "products.csv", PRODUCTS_HEADER + "p-1,Pen,office,1\n")
    files = ReferenceFiles(users, products, 1e-9)
    reference = files.read()
    assert reference is not None
    files.loaded(reference)
    assert files.changed() is False
    stat = products.stat()
    os.utime(products, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert files.changed() is True


def test_changes_are_not_checked_more_often_than_the_poll_interval(tmp_path: Path) -> None:
    """Within the poll interval, changed() does not look at the files."""
    users = csv(tmp_path, "users.csv", USERS_HEADER + "u-1,A,,,\n")
    files = ReferenceFiles(users, None, 3600)
    reference = files.read()
    assert reference is not None
    files.loaded(reference)
    stat = users.stat()
    os.utime(users, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert files.changed() is False
