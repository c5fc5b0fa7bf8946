# The front door. Every target sets up what it needs itself.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export AWS_CDK_DISABLE_VERSION_CHECK := 1

.PHONY: venv node test test-unit test-integration test-infra demo lint synth bench bench-smoke preflight deploy paging-check clean

$(VENV)/.installed: requirements.txt requirements-dev.txt layers/report_deps/requirements.txt layers/billing_deps/requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(VENV)/.installed

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

node: node_modules/.installed

test: venv node lint
	$(PY) -m pytest -q

test-unit: venv
	$(PY) -m pytest -q tests/unit

test-integration: venv
	$(PY) -m pytest -q tests/integration

test-infra: venv node
	$(PY) -m pytest -q tests/infra

demo: venv
	$(PY) -m devtools.demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

synth: venv node
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH npx cdk synth --quiet

# Every figure of README "Benchmarks" (several minutes; exit 1 while a target is missed).
bench: venv node
	$(PY) -m devtools.bench

# The same sections and code with tiny sizes, in under a minute: the bench still runs and is right
# (tests/integration/test_bench_smoke.py runs it in `make test`); it judges no target.
bench-smoke: venv node
	$(PY) -m devtools.bench --smoke

# Read-only checks of the target account before a deploy (README, Deploy): make preflight STAGE=prod
STAGE ?= dev
preflight: venv
	$(VENV)/bin/finops-guard preflight --stage $(STAGE)

# The products to deploy (each brings up the core first): Costs, Billing, or all (the default).
# make deploy STAGE=prod PRODUCT=Costs
PRODUCT ?= all
deploy: venv node
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH npx cdk deploy -c stage=$(STAGE) \
		$(if $(filter all,$(PRODUCT)),--all,FinOpsGuard-$(STAGE)-$(PRODUCT))

# After a deploy: one alarm into ALARM, and proof that CloudWatch published it to the ops topic.
paging-check: venv
	$(VENV)/bin/finops-guard paging-check --stage $(STAGE)

clean:
	rm -rf $(VENV) node_modules cdk.out out .bench
