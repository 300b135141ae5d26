# The two commands of the README: `make run` and `make test`. Both install what is missing first.
SHELL := /bin/bash
# Resolved when used, after `install` may have installed uv.
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN = $(UV) run --frozen

.PHONY: install run test lint format infra-up infra-down

install:
	@deploy/local/bootstrap.sh

run: install
	@$(RUN) python -m deploy.local.run

# The quick suites first (no network, seconds); Kafka and SecantusDB start only if they passed.
test: install lint
	$(RUN) pytest tests/unit tests/service
	$(RUN) pytest tests/deploy tests/integration tests/e2e

lint:
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy .

format:
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

infra-up: install
	$(RUN) python -m deploy.local.infra up

infra-down:
	$(RUN) python -m deploy.local.infra down
