#!/usr/bin/env bash
# Every README block opened by "<!-- snippet:NAME -->" must be the region between
# "// snippet:NAME" and "// snippet:end" of examples/documents/main.cpp (dedented), verbatim.
#   tests/snippets_check.sh            check
#   tests/snippets_check.sh NAME       print the region as the README shows it
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
example="$root/examples/documents/main.cpp"

region() {
  awk -v name="$1" '
    $0 ~ "^ *// snippet:" name "$" {on=1; next}
    on && $0 ~ "^ *// snippet:end$" {exit}
    on {print}' "$example" |
    awk '{lines[NR]=$0; if ($0 ~ /[^ ]/) {match($0, /^ */); if (min=="" || RLENGTH<min) min=RLENGTH}}
         END {for (i=1; i<=NR; i++) print substr(lines[i], min+1)}'
}

if [ $# -eq 1 ]; then region "$1"; exit 0; fi

names=$(grep -o '<!-- snippet:[a-z-]* -->' "$root/README.md" | sed 's/<!-- snippet:\(.*\) -->/\1/')
[ -n "$names" ] || { echo "README.md has no snippet blocks" >&2; exit 1; }
status=0
for name in $names; do
  block=$(awk -v name="$name" '
    $0 == "<!-- snippet:" name " -->" {on=1; next}
    on && /^```cpp$/ {inside=1; next}
    on && inside && /^```$/ {exit}
    inside {print}' "$root/README.md")
  code=$(region "$name")
  if [ -z "$code" ]; then
    echo "snippet '$name' is missing from $example" >&2; status=1
  elif [ "$block" != "$code" ]; then
    echo "README.md snippet '$name' differs from $example:" >&2
    diff <(echo "$block") <(echo "$code") >&2 || true
    status=1
  fi
done
[ $status -eq 0 ] && echo "README snippets match: $(echo $names | wc -w)"
exit $status
