# The verbs people type. Each target is a line or two that calls project code.
PY := .venv/bin/python

.PHONY: setup run test test-fast check-structure lint bench lake-maintain dashboard forward-alerts broker-start broker-stop topics compose-up compose-down clean

setup:            ## create .venv and resolve the JVM jars (cached, idempotent)
	@bash scripts/setup.sh

run: setup        ## the whole pipeline on the embedded broker, then a summary
	@$(PY) -m scripts.run_local

test: setup check-structure  ## the dependency rules, the types, then the whole suite (unit, integration, infra)
	@$(PY) -m pytest

check-structure: setup  ## import-linter (the five dependency rules) and mypy
	@.venv/bin/lint-imports
	@.venv/bin/mypy

test-fast: setup  ## unit tests only
	@$(PY) -m pytest -m "not integration"

lint: setup       ## ruff: lint and format check
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .

broker-start: setup  ## a background broker on 127.0.0.1:9092 (for running the parts by hand)
	@$(PY) -m scripts.local_broker start

broker-stop:
	@$(PY) -m scripts.local_broker stop

topics: setup
	@$(PY) -m scripts.topics create

lake-maintain: setup  ## compact closed hours, expire old snapshots, remove orphan files (the lake of LAKE_URI)
	@$(PY) -m scripts.lake maintain $(ARGS)

dashboard: setup  ## the live dashboard on http://127.0.0.1:8050 (ARGS=--demo: broker, real-time simulation and job beside it)
	@$(PY) -m scripts.dashboard $(ARGS)

forward-alerts: setup  ## notify once per alert: terminal, ALERT_WEBHOOK_URL, or SNS on AWS
	@$(PY) -m scripts.alerts forward $(ARGS)

bench: setup      ## throughput, latency, memory, scaling -> bench/results/ (ARGS=--quick: ~5 min)
	@$(PY) -m scripts.bench $(ARGS)

compose-up: setup    ## Docker: Kafka, Spark master + 2 workers, MinIO and the job (local/docker-compose.yml)
	docker compose -f local/docker-compose.yml up -d

compose-down:        ## stop the compose stack; its volumes (topics, lake) stay until `down -v`
	docker compose -f local/docker-compose.yml down

clean:            ## remove the lake and run state (keeps the venv and jar caches)
	rm -rf lake .cache/run local/.broker
