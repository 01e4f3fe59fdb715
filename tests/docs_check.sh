#!/usr/bin/env bash
# The README's quickstart block must be examples/quickstart/main.cpp, verbatim.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
block=$(awk '/<!-- quickstart:begin -->/{on=1;next} /<!-- quickstart:end -->/{on=0} on' "$root/README.md" | sed '1d;$d')
if [ "$block" != "$(cat "$root/examples/quickstart/main.cpp")" ]; then
  echo "README.md's quickstart differs from examples/quickstart/main.cpp" >&2
  diff <(echo "$block") "$root/examples/quickstart/main.cpp" >&2 || true
  exit 1
fi
echo "README quickstart matches"
