"""S3 settings from the environment: checked, written into DuckDB's secret quoted, kept out of
error lines; the store's failures classified for the retry loop."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from consumer.errors import ConfigError, DatabaseError
from consumer.warehouse import lakeconn
from consumer.warehouse.extensions import (
    CatalogUnavailableError,
    lake_error,
    load_extensions,
    redact,
)
from consumer.warehouse.objectstore import (
    S3Settings,
    StorageUnavailableError,
    brief,
    classify,
    hint,
    scrub,
)

KEYS = {"AWS_ACCESS_KEY_ID": "AKIA-test", "AWS_SECRET_ACCESS_KEY": "wJalr-secret"}


def secret_row(settings: S3Settings) -> dict[str, str]:
    """The secret DuckDB made of ``settings.secret_sql()``, as DuckDB describes it."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    load_extensions(con, remote=True)
    con.execute(settings.secret_sql())
    rows = con.execute("SELECT secret_string FROM duckdb_secrets() WHERE name = 'lake_s3'")
    (text,) = rows.fetchone() or ("",)
    return dict(part.split("=", 1) for part in text.split(";") if "=" in part)


def test_values_with_quotes_reach_the_secret_whole_and_inject_nothing() -> None:
    """A quote in a value is part of the value: the key id keeps it, and an attempt to smuggle
    an option in through the region or the key changes no other option."""
    settings = S3Settings.from_env(
        {
            "AWS_ACCESS_KEY_ID": "it's-a-key",
            "AWS_SECRET_ACCESS_KEY": "se'cret', ENDPOINT 'evil.example:1",
            "AWS_REGION": "eu-west-1', USE_SSL 'false",
            "ORDERS_S3_ENDPOINT": "127.0.0.1:9000",
            "ORDERS_S3_USE_SSL": "true",
        }
    )
    secret = secret_row(settings)
    assert secret["key_id"] == "it's-a-key"
    assert secret["region"] == "eu-west-1', USE_SSL 'false"
    assert secret["endpoint"] == "127.0.0.1:9000"
    assert secret["use_ssl"] == "true"
    assert secret["secret"] == "redacted"


def test_an_endpoint_without_keys_makes_an_anonymous_secret_pointing_at_it() -> None:
    """A local S3-compatible server without credentials: requests go to its endpoint, over
    plain HTTP, path-style, unsigned."""
    settings = S3Settings.from_env(
        {"ORDERS_S3_ENDPOINT": "127.0.0.1:8333", "ORDERS_S3_USE_SSL": "false"}
    )
    assert settings.configured
    secret = secret_row(settings)
    assert (secret["endpoint"], secret["use_ssl"], secret["url_style"]) == (
        "127.0.0.1:8333",
        "false",
        "path",
    )
    assert "key_id" not in secret


def test_defaults_are_those_of_aws_s3() -> None:
    """No endpoint: https, virtual-host style, us-east-1; and nothing set is no secret at all."""
    settings = S3Settings.from_env(KEYS)
    assert (settings.use_ssl, settings.url_style, settings.region) == (True, "vhost", "us-east-1")
    assert not S3Settings.from_env({"AWS_REGION": "eu-west-1"}).configured


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"AWS_ACCESS_KEY_ID": "k"}, "AWS_SECRET_ACCESS_KEY"),
        ({"AWS_SECRET_ACCESS_KEY": "s"}, "AWS_ACCESS_KEY_ID"),
        ({"ORDERS_S3_USE_SSL": "maybe"}, "ORDERS_S3_USE_SSL"),
        ({"ORDERS_S3_URL_STYLE": "virtual"}, "ORDERS_S3_URL_STYLE"),
        ({"ORDERS_S3_ENDPOINT": "http://127.0.0.1:9000"}, "ORDERS_S3_ENDPOINT"),
    ],
)
def test_a_bad_setting_is_a_config_error_naming_its_variable(
    env: dict[str, str], names: str
) -> None:
    with pytest.raises(ConfigError, match=names):
        S3Settings.from_env(env)


def test_the_secret_key_never_shows_in_repr_or_in_error_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not in the settings' repr, and not in a DuckDB message that quotes the statement."""
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    settings = S3Settings.from_env()
    assert "wJalr-secret" not in repr(settings)
    quoted = "Parser Error: syntax error\nLINE 1: ... SECRET 'wJalr-secret', REGION ..."
    assert "wJalr-secret" not in redact(quoted)
    assert "wJalr-secret" not in str(lake_error(duckdb.ParserException(quoted), "attach"))
    assert scrub("a 'wJalr-secret' b") == "a '***' b"


REFUSED_KEYS = (
    "HTTP Error: HTTP GET error reading 's3://bucket-one/wh/orders-pipeline-probe-' in region "
    "'us-east-1' (HTTP 403 Forbidden)\n\nSignatureDoesNotMatch: The request signature we "
    "calculated does not match the signature you provided. Check your key and signing method.\n\n"
    "Authentication Failure - this is usually caused by invalid or missing credentials.\n"
    "* Credentials are provided, but they did not work.\n\nLINE 1: SELECT count(*) FROM glob(?)"
)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # Messages as DuckDB 1.5.5's httpfs raised them against a local SeaweedFS.
        (
            "IO Error: Could not connect to server error for HTTP GET to "
            "'http://127.0.0.1:1/bucket/?encoding-type=url&list-type=2&prefix=p'",
            StorageUnavailableError,
        ),
        (
            "HTTP Error: HTTP GET error reading 'http://127.0.0.1:8333/b/x.parquet' in region "
            "'us-east-1' (HTTP 503 Service Unavailable)",
            StorageUnavailableError,
        ),
        (REFUSED_KEYS, ConfigError),
        (
            "HTTP Error: Unable to connect to URL s3://b/wh/y.parquet: Forbidden (HTTP code 403)"
            "\n\nSignatureDoesNotMatch: The request signature we calculated does not match",
            ConfigError,
        ),
        (
            "HTTP Error: HTTP GET error reading 's3://no-such-bucket/wh/p' in region 'us-east-1' "
            "(HTTP 404 Not Found)\n\nNoSuchBucket: The specified bucket does not exist",
            ConfigError,
        ),
        (
            "IO Error: SSL connect error error for HTTP GET to 'https://127.0.0.1:8333/b/?list'",
            ConfigError,
        ),
        # A data file gone is no setting (and no outage): the lake lost it.
        (
            "HTTP Error: HTTP GET error reading 's3://b/wh/main/f.parquet' in region 'us-east-1' "
            "(HTTP 404 Not Found)",
            DatabaseError,
        ),
        # The catalog's own failures stay the catalog's.
        ("IO Error: SSL SYSCALL error: EOF detected", CatalogUnavailableError),
        ("Catalog Error: Table with name nope does not exist!", ConfigError),
        ("Binder Error: something else", DatabaseError),
    ],
)
def test_store_failures_are_classified_for_the_retry_loop(text: str, kind: type) -> None:
    """An outage of the store is retried; refused credentials or a missing bucket are not."""
    error = lake_error(duckdb.IOException(text), "write batch 1")
    assert type(error) is kind, classify(text)
    assert "\n" not in str(error)


def test_a_probe_failure_reads_as_what_to_check_in_one_short_line() -> None:
    """The store's error code is kept; DuckDB's advice paragraphs and statement are not."""
    settings = S3Settings.from_env({"ORDERS_S3_ENDPOINT": "127.0.0.1:8333"})
    assert "refused the credentials" in hint(REFUSED_KEYS, settings)
    assert brief(REFUSED_KEYS) == (
        "HTTP Error: HTTP GET error reading 's3://bucket-one/wh/orders-pipeline-probe-' in region "
        "'us-east-1' (HTTP 403 Forbidden) - SignatureDoesNotMatch: The request signature we "
        "calculated does not match the signature you provided. Check your key and signing method."
    )
    refused = (
        "IO Error: Could not connect to server error for HTTP GET to 'https://127.0.0.1:8333/'"
    )
    assert hint(refused, settings) == (
        "nothing answers at https://127.0.0.1:8333 (ORDERS_S3_ENDPOINT, ORDERS_S3_USE_SSL)"
    )


def test_a_duckdb_error_while_a_lake_reader_is_in_use_becomes_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What made `query --catalog` print a traceback: an error raised by a read on the lake
    (not by the attach) left the reader untranslated. It is a PipelineError now, and the
    connection is closed."""
    con = duckdb.connect()
    monkeypatch.setattr(lakeconn, "connect", lambda *_args, **_kw: con)
    with pytest.raises(DatabaseError) as info, lakeconn.reader("postgres:host=x") as reader:
        reader.execute(f"SELECT * FROM read_parquet('{tmp_path}/missing/*.parquet')")
    assert str(info.value).startswith("cannot read the lake: IO Error: No files found")
    assert "\n" not in str(info.value)
    with pytest.raises(duckdb.ConnectionException):
        con.execute("SELECT 1")
