# wglan.mesh: one entry point for setup, demo, tests and benchmarks.
# Run as root on Debian 12+ (network namespaces, nftables, wireguard-go).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
LATEST_PY := .venv-latest/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup lint test unit ansible-test-units integration ansible-test-integration sanity docs docs-site docs-screenshots ee-context ecosystem build-check bench-peers bench-playbook bench-playbook-100 bench-controller bench-convergence demo clean collections lab lab-base lab-down

setup:
	./scripts/setup.sh

# Python and Ansible both want the collection under ansible_collections/wglan/mesh.
collections:
	@mkdir -p build/collections/ansible_collections/wglan
	@ln -sfn ../../../.. build/collections/ansible_collections/wglan/mesh

## The whole test suite (what CI runs): every suite below, each one's time printed; the lab's
## base trees are built in the background meanwhile (scripts/test.sh).
test:
	./scripts/test.sh

unit: collections
	$(PY) -m pytest -q tests/unit
	$(LATEST_PY) -m pytest -q -p no:cacheprovider tests/unit

## Two workers, a test module each at a time (mostly waiting on timers), then the serial ones alone.
integration: collections
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=25 -m "not serial" tests/integration
	$(PY) -m pytest -q --durations=10 -m serial tests/integration

## The same unit tests through ansible-test units (its own environment, tests/unit/requirements.txt).
ansible-test-units:
	./scripts/ansible-test.sh units

## The module targets of tests/integration/targets through ansible-test integration, inside a
## network namespace the script makes.
ansible-test-integration:
	./scripts/ansible-test.sh integration

docs: collections
	@set -e; for m in plugins/modules/*.py; do \
	  name=$$(basename $$m .py); \
	  ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build/collections $(VENV)/bin/ansible-doc wglan.mesh.$$name >/dev/null; \
	  echo "ansible-doc wglan.mesh.$$name: ok"; \
	done

## The documentation site (antsibull-docs, Sphinx) from the built collection: build/docs-site/html.
docs-site: build-check
	./scripts/docs-site.sh

## Screenshots of the site's index, a guide, a module and a role page (taken by the ecosystem test) into docs/.
docs-screenshots:
	$(PY) -m pytest -q tests/ecosystem/test_docs_site.py -k screenshots_of
	mkdir -p docs/screenshots && cp build/docs-site/screenshots/*.png docs/screenshots/

## The build context of an execution environment with this checkout's collection (podman build -t wglan-mesh-ee build/ee).
ee-context: build-check
	cp build/galaxy/wglan-mesh-*.tar.gz build/galaxy/wglan-mesh.tar.gz
	rm -rf build/ee
	.venv-tools/bin/ansible-builder create -f deploy/execution-environment/execution-environment-local.yml -c build/ee --output-filename Containerfile

## The collection as the ecosystem's tools see it: the site in chromium, galaxy-importer,
## ansible-builder, the dashboard against the metrics, the README against the code.
ecosystem: collections docs-site
	$(PY) -m pytest -q tests/ecosystem

build-check:
	rm -rf build/galaxy && mkdir -p build/galaxy
	$(VENV)/bin/ansible-galaxy collection build --output-path build/galaxy --force .
	$(VENV)/bin/ansible-galaxy collection install --no-deps -p build/galaxy/installed build/galaxy/wglan-mesh-*.tar.gz --force
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build/galaxy/installed $(VENV)/bin/ansible-doc -l wglan.mesh | grep -q wglan_peers
	@if tar -tzf build/galaxy/wglan-mesh-*.tar.gz | grep -q -e '^\.venv' -e '^build/'; then \
	  echo "build-check: the artifact contains local build files"; exit 1; fi
	@# only what users run, and the unit tests and ansible-test targets (the convention): galaxy.yml's build_ignore
	@outside=$$(tar -tzf build/galaxy/wglan-mesh-*.tar.gz | grep -v -E \
	  '^(MANIFEST\.json|FILES\.json|README\.md|LICENSE|bindep\.txt|requirements(-host)?\.txt|galaxy\.yml|(meta|plugins|roles|playbooks|changelogs|deploy|docs/guides)(/.*)?|docs/?|docs/demo-mesh\.svg|tests/?|tests/unit(/.*)?|tests/integration/?|tests/integration/targets(/.*)?)$$'); \
	if [ -n "$$outside" ]; then echo "build-check: files outside what the artifact may hold:"; echo "$$outside"; exit 1; fi
	@echo "build-check: $$(tar -tzf build/galaxy/wglan-mesh-*.tar.gz | wc -l) files in the artifact, ok"

lint: collections
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build/collections:$(CURDIR)/build/ecosystem $(VENV)/bin/ansible-lint

## ansible-test sanity on a copy of the collection (scripts/ansible-test.sh prepares what it needs).
sanity:
	./scripts/ansible-test.sh sanity

## The demo: machines behind two NATs on a local lab, site.yml, who reaches whom.
demo: setup collections lab-base
	$(PY) tests/lab/demo.py

lab-base:
	./tests/lab/build-base.sh

## Two labs side by side: a lab module per worker (each module brings up its own lab; a module's
## tests keep their order, the key rotation among them). See docs/guides/testing.md.
lab: collections
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=25 tests/lab

lab-down:
	$(PY) tests/lab/lab.py down

bench-playbook: setup collections lab-base
	$(PY) benchmarks/playbook.py --sizes 5,20,50

# (a separate target: 100 machines boot in about two minutes and the runs take half an hour)
bench-playbook-100: setup collections lab-base
	$(PY) benchmarks/playbook.py --sizes 100 --forks 5,25 --no-pipelining-row

bench-controller: setup collections
	$(PY) benchmarks/controller_scale.py

bench-convergence: setup collections lab-base
	$(PY) benchmarks/convergence.py

bench-peers: setup
	$(PY) benchmarks/peers_scale.py

clean:
	rm -rf build .pytest_cache
