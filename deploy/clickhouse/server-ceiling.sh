#!/usr/bin/env bash
# How many `events` rows per second one ClickHouse server on this machine takes with no
# client work at all: rows written by the store benchmark are read back pre-encoded
# (RowBinary, as the collector sends them, and Native) and POSTed again by curl, with 1 and
# 2 concurrent INSERTs. Compare with `store_bench`'s figure to see what the collector's
# inserter costs on top of the server.
#
#   deploy/clickhouse/server-ceiling.sh [clickhouse-url] [rows]
#
# Needs: curl, bc, a built store bench (`cargo bench -p shaobing-collector --bench
# store_bench --no-run`). Leaves nothing behind (its database is dropped).
set -euo pipefail
url="${1:-http://127.0.0.1:8123}"
rows="${2:-500000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

q() { curl -sfS --data-binary "$1" "$url/?database=$db${2:-}"; }

echo "== filling a database with the store benchmark ($((rows * 2)) events)"
out="$(SHAOBING_BENCH_KEEP=1 SHAOBING_BENCH_EVENTS=$((rows * 2)) SHAOBING_BENCH_CLICKHOUSE_URL="$url" \
  cargo bench -q -p shaobing-collector --bench store_bench 2>&1)"
db="$(grep -o 'database shaobing_bench_[0-9]*' <<<"$out" | head -1 | cut -d' ' -f2)"
[ -n "$db" ] || { echo "$out"; echo "no database name in the bench output"; exit 1; }
trap 'q "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
grep -E '^ClickHouse|^insert:' <<<"$out"

for format in RowBinary Native; do
  q "SELECT * FROM events ORDER BY time_ns LIMIT $rows FORMAT $format" >"$work/rows.$format"
done
q "CREATE TABLE ceiling AS events" >/dev/null
cols="$(q "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'events'")"
width=$(( $(stat -c %s "$work/rows.RowBinary") / rows ))
echo "== server only: $rows rows of $cols columns, $width bytes each in RowBinary"
insert() { curl -sfS --data-binary "@$work/rows.$1" "$url/?database=$db&query=INSERT%20INTO%20ceiling%20FORMAT%20$1"; }
for format in RowBinary Native; do
  for lanes in 1 2; do
    best=0
    for _ in 1 2 3; do
      start=$(date +%s.%N)
      for _ in $(seq "$lanes"); do insert "$format" & done
      wait
      end=$(date +%s.%N)
      rate=$(echo "$rows * $lanes / ($end - $start)" | bc)
      [ "$rate" -gt "$best" ] && best=$rate
    done
    printf '%-9s %d concurrent INSERT(s): %8d rows/s (best of 3)\n' "$format" "$lanes" "$best"
  done
done
