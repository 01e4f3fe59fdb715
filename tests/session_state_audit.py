#!/usr/bin/env python3
"""Rillflow must work behind a transaction pooler (PgBouncer pool_mode=transaction, RDS Proxy):
no code may depend on state that outlives a transaction in a server session. Scans the C++
sources for the ways to create such state and fails naming file and line:

- session advisory locks (pg_advisory_lock / pg_try_advisory_lock; the _xact_ forms are fine)
- SET / RESET / set_config(..., false) without LOCAL (session settings), libpqxx set_variable
- temporary tables, cursors WITH HOLD, PREPARE / DEALLOCATE statements
- named prepared statements outside core/src/db (db::exec decides prepared or unnamed)
- LISTEN outside the daemon's listener (it runs on its own direct connection)

Run with the repository root as argument; `--self-test` checks the patterns themselves.
"""
import pathlib
import re
import sys

SCANNED = ("core", "daemon", "examples")
EXTENSIONS = {".cpp", ".hpp", ".h", ".cc"}

# (name, regex over the source with adjacent string literals joined, allowed path prefixes)
RULES = [
    ("session advisory lock", re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.I), ()),
    ("session SET (use SET LOCAL)",
     re.compile(r"(?:^|[\";(]|\bexec\w*\(\s*\")\s*set\s+(?!local\b)(?:session\s+)?"
                r"[a-z_][a-z_0-9.]*\s*(?:=|to\b)", re.I), ()),
    ("session RESET", re.compile(r"[\";]\s*reset\s+(all|[a-z_]+)\b", re.I), ()),
    ("set_config(..., false) is session-wide",
     re.compile(r"set_config\s*\([^;]*?,\s*false\s*\)", re.I), ()),
    ("libpqxx session variable", re.compile(r"\bset_(variable|session_var)\s*\("), ()),
    ("temporary table", re.compile(r"create\s+(?:global\s+|local\s+)?temp(?:orary)?\s+table", re.I), ()),
    ("cursor WITH HOLD", re.compile(r"\bwith\s+hold\b", re.I), ()),
    ("SQL PREPARE / DEALLOCATE", re.compile(r"[\";]\s*(prepare|deallocate)\s+\w+", re.I), ()),
    ("named prepared statement outside core/src/db (use db::exec)",
     re.compile(r"\bexec_prepared\s*\(|\.prepare\s*\(|\bprepared\s*\(\s*[^)]"),
     ("core/src/db/",)),
    ("LISTEN outside the listener",
     re.compile(r"\"\s*listen\s+[\\\"a-z_]", re.I), ("daemon/src/listen/",)),
]


def joined(text):
    """Source text with comments blanked and adjacent string literals ("a" "b") joined."""
    text = re.sub(r"//[^\n]*", lambda m: " " * len(m.group(0)), text)
    return re.sub(r"\"\s*\n\s*\"", lambda m: "\n" * m.group(0).count("\n"), text)


def findings(rel, text):
    out = []
    src = joined(text)
    for name, rx, allowed in RULES:
        if any(rel.startswith(a) for a in allowed):
            continue
        for m in rx.finditer(src):
            line = src.count("\n", 0, m.start()) + 1
            out.append(f"{rel}:{line}: {name}: {m.group(0).strip()[:60]}")
    return out


def self_test():
    bad = {
        'txn.exec("select pg_advisory_lock(1)");': "session advisory lock",
        'txn.exec("SET statement_timeout = 5");': "session SET",
        'txn.exec("set search_path to x");': "session SET",
        'txn.exec("select set_config(\'a.b\', \'1\', false)");': "set_config",
        'conn.set_variable("x", "1");': "libpqxx session variable",
        '"create temp table t (a int)"': "temporary table",
        '"declare c cursor with hold for select 1"': "cursor WITH HOLD",
        'txn.exec("prepare p as select 1");': "SQL PREPARE",
        'txn.exec_prepared(conn.prepared(sql), 1);': "named prepared statement",
        'PQexec(c, "LISTEN \\"chan\\"");': "LISTEN outside",
    }
    good = [
        'txn.exec("select pg_advisory_xact_lock(1)");',
        'txn.exec("set local statement_timeout = 5");',
        '"update {schema}.t "\n    "set heartbeat_at = now()"',
        '"on conflict (id) do update set version = t.version + 1"',
        'db::exec(txn, conn, sql, 1);',
        '"select set_config(\'a.b\', \'1\', true)"',
    ]
    failed = []
    for snippet, expected in bad.items():
        got = findings("core/src/x.cpp", snippet)
        if not any(expected in g for g in got):
            failed.append(f"not flagged ({expected}): {snippet}")
    for snippet in good:
        got = findings("core/src/x.cpp", snippet)
        if got:
            failed.append(f"flagged but fine: {snippet} -> {got}")
    return failed


def main():
    failed = self_test()
    if failed:
        print("session_state_audit self-test failed:\n  " + "\n  ".join(failed))
        return 1
    if len(sys.argv) < 2:
        print("self-test passed")
        return 0
    root = pathlib.Path(sys.argv[1])
    problems = []
    scanned = 0
    for top in SCANNED:
        for path in sorted((root / top).rglob("*")):
            if path.suffix not in EXTENSIONS or not path.is_file():
                continue
            scanned += 1
            rel = path.relative_to(root).as_posix()
            problems += findings(rel, path.read_text(errors="replace"))
    if problems:
        print("session state a transaction pooler would lose or mix:\n  " + "\n  ".join(problems))
        return 1
    print(f"session state audit: {scanned} files, nothing depends on session state")
    return 0


if __name__ == "__main__":
    sys.exit(main())
