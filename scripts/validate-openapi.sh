#!/usr/bin/env bash
# Validates an OpenAPI document against the OpenAPI 3.1 specification with openapi-spec-validator
# (pinned in tests/openapi/requirements.txt, installed into target/openapi-venv). The document is
# a file or the URL of a running gateway's document; scripts/schemathesis.sh runs this on the
# generated GET /openapi.json before schemathesis starts.
# Usage: ./scripts/validate-openapi.sh <file | http://host:port/openapi.json>
set -euo pipefail
cd "$(dirname "$0")/.."

source="${1:?usage: $0 <file | URL of /openapi.json>}"
venv=target/openapi-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/openapi/requirements.txt

document="$source"
if [[ $source == http://* || $source == https://* ]]; then
  document="$(mktemp --suffix=.json)"
  trap 'rm -f "$document"' EXIT
  "$venv/bin/python" -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=10).read())' "$source" >"$document"
fi
# Every error, not only the first one; the document says its version (3.1).
"$venv/bin/openapi-spec-validator" --validation-errors all "$document"
