#!/usr/bin/env bash
# The mermaid ctest entry: renders sample traces (hostile labels included) with to_mermaid and
# checks them with the real Mermaid parser under node. The parser comes from npm, installed once
# into <modules dir> (scripts/setup does it too). Skips (exit 77) only when node is absent.
# Usage: check_mermaid.sh <mermaid_samples binary> <install prefix>
set -euo pipefail
samples_bin=$1
prefix=$2
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "skipped: node is not installed (apt-get install nodejs npm), so no Mermaid parser can run"
  exit 77
fi
version=11.17.2
if [ ! -f "$prefix/node_modules/mermaid/package.json" ]; then
  command -v npm >/dev/null 2>&1 || { echo "npm is missing: cannot install the mermaid parser"; exit 1; }
  echo "installing mermaid@$version into $prefix (once)"
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "mermaid@$version"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$samples_bin" >"$out"
node "$here/check_mermaid.mjs" "$prefix/node_modules" "$out"
