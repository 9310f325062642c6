#!/usr/bin/env bash
# Offline check of the vendored front-end files: each file listed in static/vendor/README.md
# (its table's `path` and `sha256` columns) exists and has that sha256, and no file under
# static/vendor/ is missing from the list. No network. Usage: ./scripts/check-vendor.sh
set -euo pipefail
cd "$(dirname "$0")/.."

list=static/vendor/README.md
status=0
listed=()
# The table's rows: | `swagger-ui/swagger-ui.css` | `package/…` | `<64 hex digits>` |
while IFS='|' read -r _ path _ sum _; do
  path="$(tr -d ' `' <<<"$path")"
  sum="$(tr -d ' `' <<<"$sum")"
  [[ $sum =~ ^[0-9a-f]{64}$ ]] || continue
  listed+=("$path")
  if [[ ! -f static/vendor/$path ]]; then
    echo "check-vendor: static/vendor/$path is listed in $list but missing" >&2; status=1; continue
  fi
  actual="$(sha256sum "static/vendor/$path" | cut -d' ' -f1)"
  if [[ $actual != "$sum" ]]; then
    echo "check-vendor: static/vendor/$path has sha256 $actual, $list says $sum" >&2; status=1
  fi
done < "$list"
while IFS= read -r file; do
  rel="${file#static/vendor/}"
  [[ $rel == README.md ]] && continue
  if ! printf '%s\n' "${listed[@]}" | grep -qxF "$rel"; then
    echo "check-vendor: static/vendor/$rel is not listed in $list" >&2; status=1
  fi
done < <(find static/vendor -type f | sort)
if ((${#listed[@]} == 0)); then
  echo "check-vendor: no files listed in $list" >&2; status=1
fi
[[ $status == 0 ]] && echo "check-vendor: ${#listed[@]} vendored files match $list"
exit "$status"
