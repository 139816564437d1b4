"""A lake's data on S3 (or an S3-compatible store): the settings, the DuckDB secret made of
them, and what the store's failures mean.

The settings come from the environment only, never from flags (a command line is visible to
every user of the machine): ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION`` and, for an S3-compatible store, ``ORDERS_S3_ENDPOINT``
(``host:port``), ``ORDERS_S3_URL_STYLE`` and ``ORDERS_S3_USE_SSL``. Error lines never carry the
secret key or the session token (``scrub``).

What a failure of the store means:
- the store does not answer, drops the connection or answers 5xx: ``StorageUnavailableError``
  (transient; a batch is redone once the store is back);
- refused credentials (403), a missing bucket, TLS spoken to a plain-HTTP endpoint: bad
  configuration (``ConfigError``), which no retry mends.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from consumer.errors import ConfigError, PipelineError, TransientError

SCHEMES = ("s3://", "s3a://", "s3n://", "r2://", "gcs://", "gs://")
SECRET_NAME = "lake_s3"
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
URL_STYLES = ("path", "vhost")
VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "ORDERS_S3_ENDPOINT",
    "ORDERS_S3_URL_STYLE", "ORDERS_S3_USE_SSL",
)  # fmt: skip
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

# httpfs's messages (DuckDB 1.5.5, measured against SeaweedFS) for a store that does not answer,
# and for settings no retry mends; an HTTP status decides first ("(HTTP 404 Not Found)", "(HTTP
# code 404)"): 429 and 5xx are the store's own trouble, 400/401/403 and a missing bucket ours.
STATUS = re.compile(r"\(HTTP (?:code )?(\d{3})\b")
UNAVAILABLE = (
    "Could not connect to server",
    "Could not establish connection",
    "Connection refused",
    "Connection reset",
    "Failed to read connection",
    "Failed to write connection",
    "timed out",
    "Timeout",
)
MISCONFIGURED = ("NoSuchBucket", "SSL", "TLS", "Could not resolve hostname")


class StorageUnavailableError(TransientError):
    """The lake's object store does not answer, or failed on its side (HTTP 5xx)."""


def is_remote(data_path: str | None) -> bool:
    return data_path is not None and data_path.startswith(SCHEMES)


@dataclass(frozen=True)
class S3Settings:
    """How to reach the store. ``url_style`` is ``path`` when an endpoint is set (what
    S3-compatible servers serve), else ``vhost`` (AWS's own)."""

    key_id: str = ""
    secret: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)
    region: str = "us-east-1"
    endpoint: str = ""
    url_style: str = ""
    use_ssl: bool = True
    configured: bool = False  # any S3 variable set: a secret is created

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        """The settings of the environment; ``ConfigError`` naming the variable at fault."""
        env = os.environ if env is None else env
        value = {name: env.get(name, "").strip() for name in VARIABLES}
        if bool(value["AWS_ACCESS_KEY_ID"]) != bool(value["AWS_SECRET_ACCESS_KEY"]):
            raise ConfigError("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
        endpoint = value["ORDERS_S3_ENDPOINT"]
        if "://" in endpoint or "/" in endpoint:
            raise ConfigError(
                f"ORDERS_S3_ENDPOINT is host:port, without a scheme or a path, got {endpoint!r} "
                "(ORDERS_S3_USE_SSL chooses http or https)"
            )
        style = value["ORDERS_S3_URL_STYLE"].lower() or ("path" if endpoint else "vhost")
        if style not in URL_STYLES:
            raise ConfigError(f"ORDERS_S3_URL_STYLE must be path or vhost, got {style!r}")
        ssl = value["ORDERS_S3_USE_SSL"].lower() or "true"
        if ssl not in TRUE + FALSE:
            raise ConfigError(f"ORDERS_S3_USE_SSL must be true or false, got {ssl!r}")
        return cls(
            key_id=value["AWS_ACCESS_KEY_ID"],
            secret=value["AWS_SECRET_ACCESS_KEY"],
            session_token=value["AWS_SESSION_TOKEN"],
            region=env.get("AWS_REGION", "").strip() or cls.region,
            endpoint=endpoint,
            url_style=style,
            use_ssl=ssl in TRUE,
            configured=any(value.values()),
        )

    def secret_sql(self) -> str:
        """``CREATE OR REPLACE SECRET`` (a temporary one: never written to disk), every value
        quoted. Without keys the store is used anonymously (unsigned requests)."""
        parts = [
            "TYPE s3",
            f"REGION {_quote(self.region)}",
            f"URL_STYLE {_quote(self.url_style or 'vhost')}",
            f"USE_SSL {'true' if self.use_ssl else 'false'}",
        ]
        if self.key_id:
            parts += [f"KEY_ID {_quote(self.key_id)}", f"SECRET {_quote(self.secret)}"]
        if self.session_token:
            parts.append(f"SESSION_TOKEN {_quote(self.session_token)}")
        if self.endpoint:
            parts.append(f"ENDPOINT {_quote(self.endpoint)}")
        return f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} ({', '.join(parts)})"

    def describe(self) -> str:
        """Where requests go, for an error line (no key, no secret)."""
        scheme = "https" if self.use_ssl else "http"
        return f"{scheme}://{self.endpoint}" if self.endpoint else "AWS S3"


def classify(text: str) -> type[PipelineError] | None:
    """The consumer's error type for a DuckDB message met on the object store, if it is one."""
    if "HTTP" not in text:  # httpfs names the request ("for HTTP GET to ..."); libpq does not
        return None
    if any(s in text for s in MISCONFIGURED):
        return ConfigError
    if match := STATUS.search(text):
        code = int(match.group(1))
        if code == 429 or code >= 500:
            return StorageUnavailableError
        if code in (400, 401, 403):
            return ConfigError
        return None  # a 404 of a data file: the lake lost a file, not a setting
    if any(s in text for s in UNAVAILABLE):
        return StorageUnavailableError
    return None


def scrub(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` without the secret key or session token of the environment."""
    env = os.environ if env is None else env
    for name in SECRET_VARIABLES:
        if value := env.get(name, "").strip():
            text = text.replace(value, "***").replace(value.replace("'", "''"), "***")
    return text


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def probe_pattern(data_path: str) -> str:
    """A glob under the data path that matches nothing of the lake's: listing it asks the
    store for the bucket with the credentials, and costs one small request."""
    return f"{data_path.rstrip('/')}/orders-pipeline-probe-{'[0-9]' * 3}"


def brief(text: str) -> str:
    """httpfs's first line and the store's error code line ("NoSuchBucket: ..."), without the
    advice paragraphs and the statement DuckDB appends."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    codes = [ln for ln in lines[1:] if re.match(r"[A-Z][A-Za-z]+: ", ln) and ln[:5] != "LINE "]
    return scrub(" - ".join(lines[:1] + codes[:1]))


def hint(text: str, settings: S3Settings) -> str:
    """What to check, for a failure of the start-up probe."""
    where = settings.describe()
    if re.search(r"SSL|TLS", text):
        return f"TLS failed with {where}: does it serve https? (ORDERS_S3_USE_SSL)"
    status = STATUS.search(text)
    if status and status.group(1) in ("401", "403"):
        return "the store refused the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
    if "NoSuchBucket" in text:
        return "the bucket does not exist"
    if any(s in text for s in (*UNAVAILABLE, "resolve")):
        return f"nothing answers at {where} (ORDERS_S3_ENDPOINT, ORDERS_S3_USE_SSL)"
    return "the store refused the request"
