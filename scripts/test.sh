#!/usr/bin/env bash
# Runs every test: the Rust suites (the real gateway against mock upstreams, ledger on SQLite
# files; again on PostgreSQL when TEST_DATABASE_URL is set) and the official openai and
# anthropic Python SDKs against the gateway binary. Installs the SDKs itself, into
# target/sdk-venv. Then checks the gateway against its OpenAPI document with schemathesis
# (scripts/schemathesis.sh, bounded in time; it validates the document with openapi-spec-validator
# first). Before all, the vendored front-end files against their listed sha256
# (scripts/check-vendor.sh, offline). Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/check-vendor.sh

run_suite() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace
  else
    cargo test --workspace
  fi
}

cargo build --workspace --bins
TEST_DATABASE_URL= run_suite
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  echo "== the suite again, ledger on PostgreSQL ($TEST_DATABASE_URL)"
  run_suite
  # Each test made a database of its own; drop them.
  if command -v psql >/dev/null 2>&1; then
    psql "$TEST_DATABASE_URL" -Atc "select datname from pg_database where datname like 'gw_test_%'" |
      while read -r db; do psql "$TEST_DATABASE_URL" -qc "drop database if exists \"$db\"" >/dev/null; done
  fi
fi

venv=target/sdk-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
"$venv/bin/python" tests/sdk/test_sdks.py target/debug/llm-gateway target/debug/mock-upstream

# Claude Code (installed into target/claude-code), headless, through the gateway to the mock:
# on an anthropic provider (passthrough), and on an openai provider only (every request
# translated, Messages -> Chat Completions and the stream back).
for upstream in anthropic openai; do
  CLAUDE_CODE_UPSTREAM=$upstream python3 tests/clients/claude_code.py target/debug/llm-gateway target/debug/mock-upstream
done

# The portal in headless Chromium (Debian's chromium, playwright-core into target/browser-node):
# every view against a seeded gateway, screenshots into docs/screenshots/.
python3 tests/browser/test_portal.py target/debug/llm-gateway target/debug/mock-upstream

./scripts/schemathesis.sh
