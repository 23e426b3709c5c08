# Developer shortcuts; CI runs `bash .ci/run` (setup, then check).
.PHONY: setup check check-fast lint-imports snapshot-update screenshots

setup:            ## install kumotui and the test group into .venv (and the Debian test packages)
	bash .ci/setup --test

check:            ## format, lint, types, import layers, dead code, the whole suite
	bash .ci/check

check-fast:       ## lint, types, import layers and the unit tests only
	.venv/bin/ruff check kumotui tests perf scripts
	.venv/bin/mypy
	.venv/bin/lint-imports
	.venv/bin/pytest -q tests/unit

lint-imports:     ## the layer contracts alone
	.venv/bin/lint-imports

snapshot-update:  ## accept changed SVG snapshots (look at them first: make screenshots)
	.venv/bin/pytest -q tests/snapshots --snapshot-update

screenshots:      ## regenerate screenshots/ from the deterministic demo host
	.venv/bin/python -m scripts.screenshots screenshots
