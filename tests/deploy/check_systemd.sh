#!/usr/bin/env bash
# Checks the systemd units against the real systemd tools.
#
#   tests/deploy/check_systemd.sh RILLFLOWD [PLUGIN.so ...]
#
# RILLFLOWD is a built rillflowd (any executable works as a stand-in, e.g. /bin/true):
# `systemd-analyze verify` insists that ExecStart= binaries exist, so the units are copied to a
# scratch directory with /usr/bin/rillflowd in ExecStart=/ExecStartPre= replaced by it.
#
#   1. systemd-analyze verify systemd/rillflowd.service and the template as rillflowd@demo.service;
#      any warning about them (unknown key, bad value, missing binary) is a failure, although
#      systemd-analyze itself exits 0 for most of them.
#   2. systemd-analyze security --offline: the sandbox must stay rated at or below 2.0 ("OK").
#   3. systemd/rillflow.sysusers.conf is applied by systemd-sysusers to a scratch root.
#   4. MemoryDenyWriteExecute=yes: RILLFLOWD and each PLUGIN.so must not need writable+executable
#      memory: no text relocations, no executable stack (readelf), and, where the kernel has
#      PR_SET_MDWE (Linux >= 6.3), RILLFLOWD --version runs and each plugin dlopen()s under it.
#
# Without systemd-analyze the check fails, unless RILLFLOW_ALLOW_MISSING_SYSTEMD=1 (then it says
# why and exits 0). Exit status: 0 passed, 1 failed, 2 usage.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
units_dir=${RILLFLOW_SYSTEMD_DIR:-$root/systemd}  # override: for this script's self-test only
python=/usr/bin/python3

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
fi
bin=$1
shift
case "$bin" in /*) ;; *) bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin") ;; esac
if [ ! -x "$bin" ] || [ -d "$bin" ]; then
  echo "check_systemd: $bin is not an executable file" >&2
  exit 2
fi

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
note() { echo "note: $*"; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
  if [ "${RILLFLOW_ALLOW_MISSING_SYSTEMD:-0}" = 1 ]; then
    echo "check_systemd: SKIPPED: systemd-analyze is not installed (package systemd);" \
      "RILLFLOW_ALLOW_MISSING_SYSTEMD=1 allows that"
    exit 0
  fi
  echo "check_systemd: FAIL: systemd-analyze is not installed (Debian package systemd)." \
    "Install it, or set RILLFLOW_ALLOW_MISSING_SYSTEMD=1 to skip this check." >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- 1. verify -----------------------------------------------------------------------------
# Copy each unit, pointing ExecStart=/ExecStartPre= at the given binary.
bin_sed=$(printf '%s' "$bin" | sed 's/[&#\\]/\\&/g')
for unit in rillflowd.service rillflowd@.service; do
  src=$units_dir/$unit
  if [ ! -f "$src" ]; then
    fail "$unit exists in systemd/"
    continue
  fi
  sed -E "s#^(ExecStart(Pre)?=[-@:+!]*)/usr/bin/rillflowd( |\$)#\\1${bin_sed}\\3#" "$src" >"$tmp/$unit"
  rewritten=$(grep -E '^ExecStart(Pre)?=' "$tmp/$unit" | grep -cF -- "$bin --" || true)
  if [ "$rewritten" -eq 2 ]; then
    pass "$unit: ExecStartPre= and ExecStart= run /usr/bin/rillflowd"
  else
    fail "$unit: expected ExecStartPre= and ExecStart= to run /usr/bin/rillflowd ($rewritten of 2 found)"
  fi
done

verify() {
  local name=$1 out rc=0 ours
  out=$(cd "$tmp" && systemd-analyze verify --man=no "$tmp/$name" 2>&1) || rc=$?
  # Lines about other units (the host's own targets) are not ours to fix: show them, don't fail.
  ours=$(printf '%s\n' "$out" | grep -E 'rillflowd' || true)
  if [ "$rc" -eq 0 ] && [ -z "$ours" ]; then
    pass "systemd-analyze verify $name"
  else
    fail "systemd-analyze verify $name (exit $rc):"
    printf '%s\n' "${ours:-$out}" | sed 's/^/    /'
  fi
  if [ -n "$out" ] && [ "$out" != "$ours" ]; then
    printf '%s\n' "$out" | grep -vE 'rillflowd' | sed 's/^/    note (not about rillflowd): /' || true
  fi
}
[ -f "$tmp/rillflowd.service" ] && verify rillflowd.service
[ -f "$tmp/rillflowd@.service" ] && verify rillflowd@demo.service

# ---- 2. sandbox rating ---------------------------------------------------------------------
if systemd-analyze --help 2>/dev/null | grep -q -- '--offline'; then
  for name in rillflowd.service rillflowd@demo.service; do
    [ -f "$tmp/${name/@demo/@}" ] || continue
    report=$(cd "$tmp" && systemd-analyze security --offline=true --threshold=20 --no-pager "$tmp/$name" 2>&1) && rc=0 || rc=$?
    level=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [ "$rc" -eq 0 ] && [ -n "$level" ]; then
      pass "systemd-analyze security $name: exposure $level (<= 2.0)"
    else
      fail "systemd-analyze security $name: exposure ${level:-?} above 2.0 or not rated (exit $rc)"
      printf '%s\n' "$report" | grep -E '✗|Overall' | sed 's/^/    /' || true
    fi
  done
else
  note "this systemd-analyze has no --offline; sandbox rating not checked"
fi

# ---- 3. sysusers ---------------------------------------------------------------------------
if command -v systemd-sysusers >/dev/null 2>&1; then
  mkdir -p "$tmp/root/etc"
  if out=$(systemd-sysusers --root="$tmp/root" "$units_dir/rillflow.sysusers.conf" 2>&1) &&
    grep -qE '^rillflow:x:[0-9]+:[0-9]+:[^:]*:[^:]*:/usr/sbin/nologin$' "$tmp/root/etc/passwd"; then
    pass "systemd-sysusers creates user rillflow (no login shell)"
  else
    fail "systemd-sysusers systemd/rillflow.sysusers.conf:"
    printf '%s\n' "$out" | sed 's/^/    /'
  fi
else
  note "systemd-sysusers not installed; rillflow.sysusers.conf not checked"
fi

# ---- 4. MemoryDenyWriteExecute -------------------------------------------------------------
is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' \n')" = '177ELF' ]; }

# Runs "$python mdwe exec|dlopen FILE [ARGS]" with the kernel's MDWE on; exit 77: not supported.
mdwe() {
  "$python" - "$@" <<'PY'
import ctypes, os, sys
mode, args = sys.argv[1], sys.argv[2:]
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
if os.environ.get("MDWE", "1") == "1" and libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    sys.exit(77)
if mode == "exec":
    os.execv(args[0], args)
try:
    ctypes.CDLL(args[0])
except OSError as e:
    print(e)
    sys.exit(1)
PY
}

for file in "$bin" "$@"; do
  if [ ! -f "$file" ]; then
    fail "$file exists"
    continue
  fi
  if ! is_elf "$file"; then
    note "$file is not an ELF file; MemoryDenyWriteExecute checks skipped for it"
    continue
  fi
  if command -v readelf >/dev/null 2>&1; then
    if readelf -d "$file" 2>/dev/null | grep -q TEXTREL; then
      fail "$file has text relocations (build it with -fPIC): it cannot load under MemoryDenyWriteExecute=yes"
    else
      pass "$(basename "$file"): no text relocations"
    fi
    stack=$(readelf -lW "$file" 2>/dev/null | awk '$1 == "GNU_STACK" { print $(NF-1) }')
    if [ "$stack" = RW ]; then
      pass "$(basename "$file"): non-executable stack"
    else
      fail "$file: stack flags '${stack:-none}' (want RW): an executable stack cannot be set up under MemoryDenyWriteExecute=yes"
    fi
  else
    note "readelf not installed (binutils); ELF checks skipped"
  fi
  [ -x "$python" ] || { note "$python missing; dynamic MDWE checks skipped"; continue; }
  if [ "$file" = "$bin" ]; then
    rc=0
    out=$(mdwe exec "$file" --version 2>&1) || rc=$?
    if [ "$rc" -eq 77 ]; then
      note "kernel without PR_SET_MDWE; $file --version not run under it"
    elif [ "$rc" -eq 0 ]; then
      pass "$(basename "$file") --version runs with writable+executable memory refused"
    else
      fail "$file --version under PR_SET_MDWE exited $rc:"
      printf '%s\n' "$out" | sed 's/^/    /'
    fi
  else
    # A plugin may need symbols only rillflowd provides; then it cannot be loaded on its own at
    # all, and there is nothing to compare.
    if ! base=$(MDWE=0 mdwe dlopen "$file" 2>&1); then
      note "$file does not dlopen() outside rillflowd ($base); MDWE load test skipped"
      continue
    fi
    rc=0
    out=$(mdwe dlopen "$file" 2>&1) || rc=$?
    if [ "$rc" -eq 77 ]; then
      note "kernel without PR_SET_MDWE; $file not loaded under it"
    elif [ "$rc" -eq 0 ]; then
      pass "$(basename "$file") dlopen()s with writable+executable memory refused"
    else
      fail "$file loads normally but not under PR_SET_MDWE (MemoryDenyWriteExecute=yes): $out"
    fi
  fi
done

echo "check_systemd: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
