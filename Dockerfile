# syntax=docker/dockerfile:1
#
# One image for both services of orders-pipeline (run it with --init, as compose does):
#   docker run ... orders-pipeline                     -> orders-consumer run   (the default)
#   docker run ... --entrypoint orders-sim orders-pipeline publish ...
# Configuration comes from the environment (ORDERS_*); see docs/operations.md.

ARG PYTHON_IMAGE=python:3.11-slim
# The Rust toolchain that builds the parse's native tier: at least native/Cargo.toml's
# rust-version (tests/unit/test_deploy_image.py checks it).
ARG RUST_IMAGE=rust:1.87-slim

# ---------------------------------------------------------------------------------------------
# rust: only where the native stage takes its toolchain from
# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS rust

# ---------------------------------------------------------------------------------------------
# native: the parse's native tier (native/, a Rust extension), built for the image's own Python
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS native

# pyo3 asks the Python it builds for which interpreter it targets: the extension is built on the
# image's Python, with the rust stage's toolchain; rustc links through cc.
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:${PATH}
COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY tools/__init__.py tools/native.py tools/
COPY native/Cargo.toml native/Cargo.pins native/
COPY native/src/ native/src/
# Cargo.lock is derived from Cargo.pins (tools/native.py). --require: a failed build fails the
# image's build, where make install would warn and go on without the native tier.
RUN mkdir -p consumer/core && python -m tools.native --require

# ---------------------------------------------------------------------------------------------
# build: the pinned runtime dependencies and the project, in a virtualenv copied as a whole
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# The runtime virtualenv gets neither pip nor setuptools: a venv made with ensurepip carries the
# old setuptools bundled with Python 3.11, which image scanners flag. This stage's own pip
# installs into it (pip --python).
RUN python -m venv --without-pip /opt/venv
WORKDIR /src

# Runtime dependencies first, keyed on requirements.lock alone, so that editing the code or a dev
# pin does not reinstall them. Exact pins, no URLs: pip resolves them from whatever index it is
# configured with (PIP_INDEX_URL works as usual).
COPY requirements.lock ./
RUN pip --python /opt/venv/bin/python install --only-binary=:all: -r requirements.lock

# The build backend at the dev lock's pin, for this stage's pip only (never in the runtime venv).
COPY requirements-dev.lock ./
RUN pip install "$(grep -E '^setuptools==' requirements-dev.lock)"

COPY pyproject.toml README.m[d] ./
COPY orders_common/ orders_common/
COPY consumer/ consumer/
COPY producer_sim/ producer_sim/
COPY sql/ sql/
# pyproject.toml maps ./sql into the wheel as consumer/sql (consumer/warehouse/sqlfiles.py sql_dir()).
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && pip --python /opt/venv/bin/python install --no-deps /wheels/*.whl

# The native tier, into the installed package beside consumer/core/native.py (the wheel is pure
# Python; the extension was built for this image's Python in the native stage).
COPY --from=native /src/consumer/core/ /native/
RUN cp /native/_native*.so "$(/opt/venv/bin/python -c \
      'import consumer.core, os; print(os.path.dirname(consumer.core.__file__))')/"

# ---------------------------------------------------------------------------------------------
# runtime: slim, non-root, no compilers, no pip cache, no source tree; the native tier in the venv
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG APP_UID=10001
ARG APP_GID=10001
# Nothing at run time needs the base image's own setuptools and wheel (pinned old in the Python
# 3.11 images): remove them, as scanners flag them too.
RUN python -m pip uninstall --yes --quiet setuptools wheel \
 && groupadd --system --gid "${APP_GID}" app \
 && useradd --system --uid "${APP_UID}" --gid app --home-dir /home/app --create-home \
      --shell /usr/sbin/nologin app \
 && mkdir -p /data /reference \
 && chown app:app /data /reference

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ORDERS_DB=/data/warehouse.duckdb \
    ORDERS_METRICS_HOST=0.0.0.0 \
    ORDERS_METRICS_PORT=9108

# Fail the build, not the first start, if the SQL, the native tier or the console scripts are
# missing.
RUN python -c "from consumer.warehouse.sqlfiles import sql_dir; d = sql_dir(); \
assert (d / '001_star_schema.sql').is_file() and any((d / 'reports').glob('*.sql')) \
and (d / 'lake' / '001_lake_schema.sql').is_file() and (d / 'views' / 'history.sql').is_file(), d" \
 && python -c "from consumer.core import native; \
assert native.decoder() is not None and native.key_hasher() is not None, 'no native tier'" \
 && orders-consumer --help > /dev/null \
 && orders-sim --help > /dev/null

# No VOLUME: it would give every container of this image an anonymous volume, used or not (the
# simulator's never touch /data). Mount one at /data for the warehouse file (-v NAME:/data).
WORKDIR /data
USER ${APP_UID}:${APP_GID}
EXPOSE 9108

# Liveness of the consume loop (docs/interface.md §7). slim has no curl: python's urllib it is; any
# error or a non-2xx answer raises, which exits 1 (unhealthy).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('ORDERS_METRICS_PORT') or '9108'; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).close()"]

ENTRYPOINT ["orders-consumer"]
CMD ["run"]
