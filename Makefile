# The two commands a newcomer needs:
#   make dev    run the whole system locally (emulator + API on http://127.0.0.1:3000)
#   make test   run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
ST_VENV := .venv-schemathesis
BROWSER := tests/browser
PY := python3
PORT ?= 3000
EMULATOR_PORT ?= 4566
export SAM_CLI_TELEMETRY := 0
export CARGO_TERM_COLOR ?= never

.PHONY: help dev test venv system build sam-build s3s-fs lint template bench cold-start fuzz clean

help:
	@echo "make dev    - run the whole system locally: emulator on 127.0.0.1:$(EMULATOR_PORT), API on http://127.0.0.1:$(PORT)"
	@echo "make test   - run every test: format, lints, template checks, sam build, unit, handler, end-to-end and invoke tests"
	@echo "make sam-build - sam build: the seven functions' arm64 bootstrap artifacts, checked"
	@echo "make bench  - time the image pipeline against libvips on the corpus (BENCH_ARGS='--rounds 3')"
	@echo "make cold-start - measure the cold start of the process and get functions on the emulator"
	@echo "make fuzz   - fuzz the image pipeline and the document validators (FUZZ_SECONDS=600 each)"

# The pinned Python tools (moto, aws-sam-cli, cfn-lint, cargo-lambda), in the repo's own venv.
$(VENV)/.installed: tools/requirements.lock
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r tools/requirements.lock
	touch $@

venv: $(VENV)/.installed

$(VENV)/.bench-installed: $(VENV)/.installed tools/bench-requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/bench-requirements.txt
	touch $@

# Debian packages the build needs (cmake, nasm), pinned; installed only when missing.
system:
	scripts/system-deps.sh

build: system
	cargo build --workspace --locked

dev: system venv
	cargo build --locked -p media-dev
	EMULATOR_PORT=$(EMULATOR_PORT) PORT=$(PORT) \
	  CLEANUP_INTERVAL_SECONDS=$${CLEANUP_INTERVAL_SECONDS:-300} \
	  scripts/with-emulator.sh target/debug/media-dev serve

lint: system
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

template: venv
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint --template template.yaml

# The builds run two at a time (scripts/test-builds.sh): sam build beside the lints and test builds.
test: system venv template $(ST_VENV)/.installed $(BROWSER)/node_modules/.installed
	MAKE=$(MAKE) scripts/test-builds.sh
	scripts/with-emulator.sh cargo test --workspace --locked
	scripts/with-emulator.sh scripts/schemathesis.sh
	scripts/with-emulator.sh scripts/browser-tests.sh

# The browser tests' packages (playwright-core, Uppy 6 and 5), pinned by package-lock.json.
$(BROWSER)/node_modules/.installed: $(BROWSER)/package-lock.json
	cd $(BROWSER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# schemathesis (pinned) in its own venv: its dependencies are not the emulator's.
$(ST_VENV)/.installed: tools/schemathesis.lock
	$(PY) -m venv $(ST_VENV)
	$(ST_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r tools/schemathesis.lock
	touch $@

# s3s-fs (pinned): an S3 server that checks signatures, expiry and POST policies, for the tests
# that prove the presign contract is enforced (the emulator accepts anything).
S3S_FS_VERSION := 0.14.1
.tools/bin/s3s-fs:
	cargo install s3s-fs --version $(S3S_FS_VERSION) --features binary --locked --root .tools

s3s-fs: .tools/bin/s3s-fs

# The deployable artifacts: sam build (cargo-lambda, arm64, release) and a check of all seven.
sam-build: system venv
	scripts/sam-build.sh

# Our pipeline against libvips (pyvips), one core, warm, alternating; prints the ratios.
bench: system $(VENV)/.bench-installed
	cargo build --release --locked -p media-dev
	$(VENV)/bin/python bench/compare.py --media-dev target/release/media-dev $(BENCH_ARGS)

# The cold start of the process function and of an API function (get): process start to the
# first event handled, over the Lambda Runtime API protocol, against the emulator.
cold-start: system $(VENV)/.bench-installed
	cargo build --release --locked -p process -p get -p media-dev
	scripts/with-emulator.sh $(VENV)/bin/python bench/cold_start.py \
	  --bootstrap target/release/process --media-dev target/release/media-dev
	scripts/with-emulator.sh $(VENV)/bin/python bench/cold_start.py --function get \
	  --bootstrap target/release/get --media-dev target/release/media-dev

# cargo-fuzz (pinned) in .tools; libFuzzer needs nightly flags, which RUSTC_BOOTSTRAP allows on
# the pinned stable toolchain. Three targets, FUZZ_SECONDS each: the image pipeline, with
# RUST_BACKTRACE=0 (under cargo fuzz's debug assertions rav1d checks every borrow of its frame
# buffers and, when RUST_BACKTRACE is set, captures a backtrace for each: one 512x256 AVIF took
# 61 s a run instead of 3 s; a panic still aborts with the sanitizer's stack) (seeds: the
# corpus's images, the WebP and PNG orientation fixtures, and the small HEIC/HEIF and AVIF files
# of tests/heif and tests/avif), the document validators (seeds:
# tests/documents) and the video and audio container probes (seeds: tests/av). Finds land in
# fuzz/artifacts/.
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_SECONDS ?= 600
CORPUS_DIR ?= $(or $(MEDIA_CORPUS_DIR),../shared/corpus)
.tools/bin/cargo-fuzz:
	cargo install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --root .tools

fuzz: system .tools/bin/cargo-fuzz
	mkdir -p fuzz/corpus/pipeline
	find $(CORPUS_DIR) -maxdepth 1 -type f \( -name '*.jpg' -o -name '*.png' -o -name '*.webp' -o -name '*.gif' \) \
	  -size -300k -exec cp -n {} fuzz/corpus/pipeline/ \;
	cp -n shared/pipeline/tests/fixtures/orientation/*.webp shared/pipeline/tests/fixtures/orientation/*.png fuzz/corpus/pipeline/
	find tests/heif tests/avif -maxdepth 1 -type f \( -name '*.hei[cf]' -o -name '*.avif' \) -size -300k \
	  -exec cp -n {} fuzz/corpus/pipeline/ \;
	RUST_BACKTRACE=0 RUSTC_BOOTSTRAP=1 .tools/bin/cargo-fuzz run --fuzz-dir fuzz pipeline fuzz/corpus/pipeline -- \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=262144 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
	mkdir -p fuzz/corpus/documents
	find tests/documents -maxdepth 1 -type f ! -name '*.py' ! -name '*.tsv' -size -300k \
	  -exec cp -n {} fuzz/corpus/documents/ \;
	RUSTC_BOOTSTRAP=1 .tools/bin/cargo-fuzz run --fuzz-dir fuzz documents fuzz/corpus/documents -- \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=262144 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
	mkdir -p fuzz/corpus/av
	find tests/av -maxdepth 1 -type f ! -name '*.tsv' -size -300k -exec cp -n {} fuzz/corpus/av/ \;
	RUSTC_BOOTSTRAP=1 .tools/bin/cargo-fuzz run --fuzz-dir fuzz av fuzz/corpus/av -- \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=262144 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1

clean:
	rm -rf $(VENV) $(ST_VENV) .local target .aws-sam
