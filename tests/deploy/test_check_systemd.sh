#!/usr/bin/env bash
# Self-test of check_systemd.sh: the real units pass with a stand-in binary, and each kind of
# mistake it exists to catch fails it. Needs gcc (build-essential) for the bad ELF files.
#
#   tests/deploy/test_check_systemd.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
check=$here/check_systemd.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
# expect EXIT_STATUS PATTERN -- COMMAND...: the command exits so and prints PATTERN (grep -E).
expect() {
  local want=$1 pattern=$2 name=$3 out rc=0
  shift 4
  out=$("$@" 2>&1) || rc=$?
  if [ "$rc" -eq "$want" ] && printf '%s\n' "$out" | grep -qE -- "$pattern"; then
    passed=$((passed + 1))
    echo "ok: $name"
  else
    failed=$((failed + 1))
    echo "FAIL: $name (exit $rc, wanted $want and /$pattern/):"
    printf '%s\n' "$out" | sed 's/^/    /'
  fi
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "test_check_systemd: SKIPPED: systemd-analyze not installed"
  exit 0
fi

expect 0 '[1-9][0-9]* passed, 0 failed' "the real units pass with /bin/true as rillflowd" -- \
  "$check" /bin/true

# A unit with a typo'd key: systemd-analyze only warns, the check must fail.
cp -r "$root/systemd" "$tmp/typo"
sed -i 's/^WatchdogSec=30$/WatchdogSecs=30/' "$tmp/typo/rillflowd.service"
expect 1 "FAIL: systemd-analyze verify rillflowd.service" "an unknown key fails verify" -- \
  env RILLFLOW_SYSTEMD_DIR="$tmp/typo" "$check" /bin/true

# A bad value in the template only.
cp -r "$root/systemd" "$tmp/badvalue"
sed -i 's/^Type=notify$/Type=notfy/' "$tmp/badvalue/rillflowd@.service"
expect 1 "FAIL: systemd-analyze verify rillflowd@demo.service" "a bad value in the template fails verify" -- \
  env RILLFLOW_SYSTEMD_DIR="$tmp/badvalue" "$check" /bin/true

# Sandboxing removed: the exposure rating goes above 2.0.
cp -r "$root/systemd" "$tmp/open"
sed -i -E '/^(Protect|Private|Restrict|SystemCall|CapabilityBoundingSet|NoNewPrivileges|MemoryDeny|LockPersonality)/d' \
  "$tmp/open/rillflowd.service"
expect 1 "FAIL: systemd-analyze security rillflowd.service" "a weaker sandbox fails the rating" -- \
  env RILLFLOW_SYSTEMD_DIR="$tmp/open" "$check" /bin/true

# A broken sysusers line.
cp -r "$root/systemd" "$tmp/sysusers"
echo 'u rillflow - "x" / /usr/sbin/nologin trailing-garbage' >"$tmp/sysusers/rillflow.sysusers.conf"
expect 1 "FAIL: systemd-sysusers" "a broken sysusers.d line fails" -- \
  env RILLFLOW_SYSTEMD_DIR="$tmp/sysusers" "$check" /bin/true

# ELF files that cannot run under MemoryDenyWriteExecute=yes.
if command -v gcc >/dev/null 2>&1; then
  printf 'int plugin_fn(void) { return 42; }\n' >"$tmp/p.c"
  gcc -shared -fPIC -Wl,-z,execstack -o "$tmp/libexecstack.so" "$tmp/p.c"
  expect 1 "FAIL: .*libexecstack.so: stack flags 'RWE'" "a plugin asking for an executable stack fails" -- \
    "$check" /bin/true "$tmp/libexecstack.so"
  cat >"$tmp/wx.c" <<'C'
#include <stdio.h>
#include <sys/mman.h>
int main(void) {
  void* p = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  return 0;
}
C
  gcc -o "$tmp/wx" "$tmp/wx.c"
  if /usr/bin/python3 -c 'import ctypes,sys; sys.exit(ctypes.CDLL(None).prctl(65,1,0,0,0) != 0)' 2>/dev/null; then
    expect 1 "FAIL: .*wx --version under PR_SET_MDWE" "a binary that maps writable+executable memory fails" -- \
      "$check" "$tmp/wx"
  else
    echo "note: kernel without PR_SET_MDWE; the W+X binary case is not run"
  fi
else
  echo "note: gcc not installed; the bad-ELF cases are not run"
fi

# No systemd-analyze: fail, unless explicitly allowed. PATH gets every tool but systemd-analyze.
mkdir "$tmp/bin"
for d in /usr/local/bin /usr/bin /bin; do
  for f in "$d"/*; do
    name=${f##*/}
    [ "$name" = systemd-analyze ] || [ -e "$tmp/bin/$name" ] || ln -s "$f" "$tmp/bin/$name"
  done
done
expect 1 "systemd-analyze is not installed" "a missing systemd-analyze fails" -- \
  env PATH="$tmp/bin" "$check" /bin/true
expect 0 "SKIPPED" "RILLFLOW_ALLOW_MISSING_SYSTEMD=1 lets a missing systemd-analyze pass" -- \
  env PATH="$tmp/bin" RILLFLOW_ALLOW_MISSING_SYSTEMD=1 "$check" /bin/true

echo "test_check_systemd: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
