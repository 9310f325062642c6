#!/usr/bin/env bash
# Checks the gateway against its own /openapi.json: the document passes openapi-spec-validator
# (scripts/validate-openapi.sh), then schemathesis: no 5xx, no undocumented status, no answer that
# breaks its schema, content type or headers, invalid input refused.
#
# Builds and starts target/debug/mock-upstream and target/debug/llm-gateway on
# free ports, the four provider types all on the mock and an admin token set, and stops both
# however the run ends. Installs the pinned schemathesis (tests/schemathesis/requirements.txt)
# into target/schemathesis-venv-<python version>. Leaves the gateway's log and the reports (JUnit, NDJSON) in
# target/schemathesis/. Exits non-zero on any failure.
#
# Bounded: SCHEMATHESIS_MAX_EXAMPLES cases per operation and phase (default 100), and
# SCHEMATHESIS_TIMEOUT seconds for the whole run (default 150). SCHEMATHESIS_SEED replays a
# run (the seed is printed at the end of each one).
# Usage: ./scripts/schemathesis.sh [more `st run` options, e.g. --continue-on-failure]
set -euo pipefail
cd "$(dirname "$0")/.."

max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
budget="${SCHEMATHESIS_TIMEOUT:-150}"
gateway=target/debug/llm-gateway
mock=target/debug/mock-upstream
out=target/schemathesis
# Python 3.11 fails inside hypothesis with "AST constructor recursion depth mismatch" while
# describing a lambda of schemathesis' coverage phase (seen on 3.11.2 and 3.11.7, on the
# errors and catalog operations); 3.13 does not. So: SCHEMATHESIS_PYTHON, else a Python 3.13
# (on PATH or pyenv's), else python3.
python="${SCHEMATHESIS_PYTHON:-}"
if [ -z "$python" ]; then
  python=python3
  for candidate in "$(command -v python3.13 || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3; do
    if [ -n "$candidate" ] && "$candidate" -c "import sys" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
venv="target/schemathesis-venv-$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

cargo build --workspace --bins
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/schemathesis/requirements.txt

rm -rf "$out"
mkdir -p "$out"
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 130' INT TERM

"$mock" >"$out/mock.port" 2>"$out/mock.log" &
pids+=("$!")
for _ in $(seq 1 100); do
  [ -s "$out/mock.port" ] && break
  sleep 0.1
done
mock_port="$(head -n 1 "$out/mock.port")"
[ -n "$mock_port" ] || { echo "mock-upstream did not start: $(cat "$out/mock.log")" >&2; exit 1; }
mock_url="http://127.0.0.1:$mock_port"

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export SCHEMATHESIS_CACHE_DIR="$PWD/target/schemathesis-cache"
SCHEMATHESIS_ADMIN_TOKEN="$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(16))')"
export SCHEMATHESIS_ADMIN_TOKEN
cat >"$out/config.toml" <<EOF
[server]
admin_token = "$SCHEMATHESIS_ADMIN_TOKEN"

# /v1/ask writes its SQL with the mock's gpt-4o (whose text is no SQL: a 422 to check).
[analytics]
model = "gpt-4o"

[database]
url = "sqlite://$PWD/$out/ledger.db?mode=rwc"
spool_dir = "$PWD/$out/spool"

[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-schemathesis-openai"
endpoint = "$mock_url/v1"

[[providers]]
id = "azure"
provider_type = "azure_openai"
api_key = "schemathesis-azure"
endpoint = "$mock_url"
deployment = "gpt-4o-azure"
api_version = "2024-10-21"

[[providers]]
id = "anthropic"
provider_type = "anthropic"
api_key = "sk-ant-schemathesis"
endpoint = "$mock_url"

[[providers]]
id = "local"
provider_type = "local"
endpoint = "$mock_url"
models = ["llama3:8b"]
EOF

RUST_LOG=warn "$gateway" --config "$out/config.toml" --port "$port" >"$out/gateway.log" 2>&1 &
gateway_pid="$!"
pids+=("$gateway_pid")
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 "$gateway_pid" 2>/dev/null || { echo "the gateway exited: $(cat "$out/gateway.log")" >&2; exit 1; }
  sleep 0.1
done

# The document itself first: valid OpenAPI 3.1 (openapi-spec-validator).
./scripts/validate-openapi.sh "$base/openapi.json" || { echo "the OpenAPI document is not valid" >&2; exit 1; }

# The checks are listed in tests/schemathesis/schemathesis.toml (per operation where they differ).
# In the background, so that a signal to this script is handled at once, not after the run.
timeout --kill-after=10 "$budget" "$venv/bin/st" --no-color \
  --config-file tests/schemathesis/schemathesis.toml \
  run "$base/openapi.json" \
  --max-examples "$max_examples" \
  ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
  --workers 2 \
  --request-timeout 10 \
  --report junit,ndjson --report-dir "$out/reports" \
  "$@" &
st_pid="$!"
pids=("$st_pid" "${pids[@]}")
status=0
wait "$st_pid" || status=$?
if [ "$status" -eq 124 ]; then
  echo "schemathesis did not finish within ${budget}s (SCHEMATHESIS_TIMEOUT)" >&2
fi
if ! kill -0 "$gateway_pid" 2>/dev/null; then
  echo "the gateway died during the run; its log: $out/gateway.log" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "schemathesis: failures (reports and the gateway's log in $out/)" >&2
fi
exit "$status"
