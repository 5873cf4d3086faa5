#!/usr/bin/env python3
"""Replays the ClickHouse store's statements on current ClickHouse, in-process with chdb.

Driven by collector/tests/store_chdb.rs, which records every statement the store sent to
ClickHouse 18.16 during a workload, replays them on 18.16 in a fresh database to get each
query's output, and writes a manifest:

    {
      "database": "...",
      "statements": [{"name", "kind", "sql", "settings": [[k, v]], "expected": str|null}],
      "modern": [{"name", "kind", "sql", "settings"}],       # run after, e.g. TTL ALTERs
      "probe_expected": "1\\t1\\t1\\t1",                     # capability probe, minus version
      "engine_must_contain": {"table": ["substring", ...]}
    }

This script runs the same statements in the same order on chdb (ClickHouse 26.x), compares
every query's TSV output with 18.16's, then runs the "modern" statements and checks the
tables' engine clauses. Exit 0: all ran and matched; 1: a statement failed or differed;
3: chdb is not importable.

    python3 run_chdb.py --check          # is chdb importable? prints its version
    python3 run_chdb.py MANIFEST.json    # replay

Install chdb with:  pip install chdb-core==26.9.0
"""

import json
import os
import sys
import tempfile
import time

# Both servers must print DateTime columns in UTC (the 18.16 test server runs in UTC).
os.environ["TZ"] = "UTC"
time.tzset()

PIP_COMMAND = "pip install chdb-core==26.9.0"


def import_chdb():
    try:
        import chdb  # noqa: F401  (import check)
        from chdb import session
    except ImportError as error:
        print(
            f"chdb is not importable ({error}); install it with: {PIP_COMMAND}",
            file=sys.stderr,
        )
        sys.exit(3)
    return chdb, session


def run(sess, sql, fmt="TSV"):
    result = sess.query(sql, fmt)
    if result is None:
        return ""
    if hasattr(result, "bytes"):
        return result.bytes().decode("utf-8", errors="replace")
    return str(result)


def with_settings(sess, settings, action):
    for name, value in settings:
        run(sess, f"SET {name} = {value}")
    try:
        return action()
    finally:
        for name, _ in settings:
            run(sess, f"SET {name} = DEFAULT")


def short(text, limit=600):
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def replay(manifest_path):
    chdb, session = import_chdb()
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    database = manifest["database"]
    workdir = tempfile.mkdtemp(prefix="shaobing-chdb-")
    sess = session.Session(workdir)
    version = run(sess, "SELECT version()").strip()
    print(f"chdb {chdb.__version__}, ClickHouse {version}")
    run(sess, f"CREATE DATABASE IF NOT EXISTS {database}")
    run(sess, f"USE {database}")

    failures = []
    counts = {"ran": 0, "compared": 0}

    def execute(entry, index, expected):
        name, sql = entry["name"], entry["sql"]
        try:
            out = with_settings(sess, entry.get("settings", []), lambda: run(sess, sql))
        except Exception as error:  # chdb raises its own exception types
            failures.append(f"#{index} {name}: failed: {error}\n    SQL: {short(sql)}")
            return None
        counts["ran"] += 1
        if expected is not None:
            counts["compared"] += 1
            if out != expected:
                failures.append(
                    f"#{index} {name}: output differs from ClickHouse 18.16\n"
                    f"    SQL: {short(sql)}\n"
                    f"    18.16: {short(expected)!r}\n"
                    f"    {version}: {short(out)!r}"
                )
        return out

    for index, entry in enumerate(manifest["statements"]):
        out = execute(entry, index, entry.get("expected"))
        if entry["name"] == "server.probe" and out is not None:
            flags = out.strip().split("\t")[1:]
            if "\t".join(flags) != manifest["probe_expected"]:
                failures.append(
                    f"server.probe: capabilities {flags} on {version}, "
                    f"expected {manifest['probe_expected']!r}"
                )

    for index, entry in enumerate(manifest.get("modern", [])):
        execute(entry, f"modern-{index}", None)

    for table, needles in manifest.get("engine_must_contain", {}).items():
        engine = run(
            sess,
            "SELECT engine_full FROM system.tables "
            f"WHERE database = '{database}' AND name = '{table}'",
        )
        for needle in needles:
            if needle not in engine:
                failures.append(f"{table}: engine clause lacks {needle!r}: {engine.strip()!r}")

    print(
        f"{counts['ran']} statements ran on ClickHouse {version}, "
        f"{counts['compared']} query outputs compared with 18.16"
    )
    if failures:
        print(f"{len(failures)} problem(s):", file=sys.stderr)
        for failure in failures:
            print(failure, file=sys.stderr)
        return 1
    print("all statements ran and every output matched ClickHouse 18.16")
    return 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--check":
        chdb, _ = import_chdb()
        print(f"chdb {chdb.__version__}")
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    return replay(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
