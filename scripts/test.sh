#!/usr/bin/env bash
# Runs every test: the Rust suites (the real gateway against mock upstreams) and the official
# openai and anthropic Python SDKs against the gateway binary. Installs the SDKs itself, into
# target/sdk-venv. Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace
else
  cargo test --workspace
fi

venv=target/sdk-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
"$venv/bin/python" tests/sdk/test_sdks.py target/debug/llm-gateway target/debug/mock-upstream
