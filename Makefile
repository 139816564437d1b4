SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LOCKS := requirements.lock requirements-dev.lock pyproject.toml
LOCK_HASH := $(shell cat $(LOCKS) 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)

KAFKA_PORT ?= 9092
BOOTSTRAP ?= 127.0.0.1:$(KAFKA_PORT)
export KAFKA_PORT
POSTGRES_PORT ?= 5432
export POSTGRES_PORT
S3_PORT ?= 8333
export S3_PORT

DEMO_ORDERS ?= 20000
DEMO_SEED ?= 42
DEMO_TOPIC ?= orders
METRICS_PORT ?= 9108
DATA ?= data
# The change topics of reference data (users, products, exchange rates) beside the orders.
DEMO_REFERENCE_TOPICS = --users-topic $(DEMO_TOPIC).users --products-topic $(DEMO_TOPIC).products \
  --fx-topic $(DEMO_TOPIC).fx
BENCH_ARGS ?=

.PHONY: help install lint fmt test test-unit coverage soak demo bench bench-parse kafka-up kafka-down kafka-status \
        demo-lake postgres-up postgres-down postgres-status s3-up s3-down s3-status compose-check clean \
        dashboard

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36mmake %-13s\033[0m %s\n", $$1, $$2}'

install: $(STAMP) ## Create or update .venv from the pinned locks, and build the native parse tier (where it builds)
	@$(PY) -m tools.native

$(STAMP): $(LOCKS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "error: Python 3.11+ is required (set PYTHON=/path/to/python3.11)" >&2; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

lint: install ## Ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install ## The whole suite: unit, integration and crash tests (own Kafka unless KAFKA_BOOTSTRAP_SERVERS)
	$(PY) -m pytest

coverage: install ## Unit tests alone (no broker) under coverage.py; fails below 85% of consumer/
	$(PY) -m coverage run --source=consumer -m pytest tests/unit -q
	$(PY) -m coverage report --skip-covered --fail-under=85

test-unit: install ## Unit tests only (no broker)
	$(PY) -m pytest -m "not integration"

soak: install ## The crash suite at release scale: 200k orders, 100 random SIGKILLs (not in make test)
	RELIABILITY_SCALE=soak $(PY) -m pytest tests/reliability -m reliability

demo: install kafka-up ## Publish a sample stream with its change topics, consume it into ./data/warehouse.duckdb, print the reports
	@mkdir -p $(DATA)/reference
	$(VENV)/bin/orders-sim publish --bootstrap-servers $(BOOTSTRAP) --topic $(DEMO_TOPIC) \
	  --orders $(DEMO_ORDERS) --seed $(DEMO_SEED) --reference-dir $(DATA)/reference \
	  $(DEMO_REFERENCE_TOPICS) --log-format json >/dev/null
	$(VENV)/bin/orders-consumer run --bootstrap-servers $(BOOTSTRAP) --topic $(DEMO_TOPIC) \
	  --group-id orders-demo --db $(DATA)/warehouse.duckdb --until-idle 3 \
	  $(DEMO_REFERENCE_TOPICS) --log-format console
	@for report in top-users top-products top-countries "top-countries --as-is" \
	    "top-countries --currency EUR" sales-by-channel "sales-over-time --grain week" \
	    unconverted-sales; do \
	  echo; echo "== $$report"; \
	  $(VENV)/bin/orders-consumer query $$report --db $(DATA)/warehouse.duckdb || exit 1; \
	done

dashboard: install kafka-up ## Serve the live dashboard of the demo warehouse on http://127.0.0.1:9108/ (Ctrl-C stops)
	@mkdir -p $(DATA)/reference
	@echo "dashboard: open http://127.0.0.1:$(METRICS_PORT)/ (Ctrl-C stops the consumer)"
	$(VENV)/bin/orders-consumer run --bootstrap-servers $(BOOTSTRAP) --topic $(DEMO_TOPIC) \
	  --group-id orders-demo --db $(DATA)/warehouse.duckdb --metrics-port $(METRICS_PORT) \
	  $(DEMO_REFERENCE_TOPICS) --log-format console


demo-lake: install kafka-up postgres-up $(if $(S3),s3-up) ## Three consumers of one group write one DuckLake warehouse (./data/lake; S3=1: on the local S3 server); reports read while they run
	$(PY) -m tools.demolake --bootstrap-servers $(BOOTSTRAP) --postgres-port $(POSTGRES_PORT) \
	  --orders $(DEMO_ORDERS) --seed $(DEMO_SEED) --data $(DATA) $(if $(S3),--s3)

bench: install kafka-up postgres-up ## Throughput vs a bare consumer, and the lake with 1-3 members (1M orders; BENCH_ARGS="--orders 200000 --no-lake" for less)
	$(PY) -m bench --bootstrap-servers $(BOOTSTRAP) $(BENCH_ARGS)

bench-parse: install kafka-up ## Instructions per record of the parse (callgrind; repeatable where timings are not; needs valgrind)
	$(PY) -m bench.instructions --bootstrap-servers $(BOOTSTRAP) $(BENCH_PARSE_ARGS)

kafka-up: install ## Start a local Kafka (KRaft, no Docker) on 127.0.0.1:$KAFKA_PORT; idempotent
	$(PY) -m tools.localkafka up

kafka-down: install ## Stop the local Kafka broker
	$(PY) -m tools.localkafka down

kafka-status: install ## Tell whether the local Kafka broker runs
	@$(PY) -m tools.localkafka status

postgres-up: install ## Start a local PostgreSQL (DuckLake catalog, no Docker) on 127.0.0.1:$POSTGRES_PORT; idempotent
	$(PY) -m tools.localpg up

postgres-down: install ## Stop the local PostgreSQL server
	$(PY) -m tools.localpg down

postgres-status: install ## Tell whether the local PostgreSQL server runs
	@$(PY) -m tools.localpg status

s3-up: install ## Start a local S3 server (SeaweedFS, built once from the Go module proxy) on 127.0.0.1:$S3_PORT; idempotent
	$(PY) -m tools.locals3 up

s3-down: install ## Stop the local S3 server
	$(PY) -m tools.locals3 down

s3-status: install ## Tell whether the local S3 server runs
	@$(PY) -m tools.locals3 status

compose-check: ## Validate docker-compose.yml (needs docker-compose, no Docker engine)
	docker-compose -f docker-compose.yml --profile monitoring --profile lake config -q

clean: ## Remove ./data, benchmark results and caches (not the Kafka jars or broker data)
	rm -rf $(DATA) bench-results .pytest_cache .mypy_cache .ruff_cache .hypothesis
