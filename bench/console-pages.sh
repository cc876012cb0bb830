#!/bin/sh
# console-pages.sh: how long the web console's pages take as a browser
# meets them: HTTPS to a running node's admin listener, signed in with an
# API key through the sign-in form (cookie and CSRF token as a browser
# keeps them), each request on a new TLS connection (curl per request; a
# browser reusing its connection is faster). Needs curl and python3.
#
#   yrdnode dev --data-dir DIR &            # in its own network namespace
#   bench/console-pages.sh DIR operator 200 / /catalog /grants
#   bench/console-pages.sh DIR auditor 200 /audit /usage
set -eu
dir=$1 role=$2 n=$3
shift 3
base=https://127.0.0.1:7421
jar=$(mktemp)
times=$(mktemp)
trap 'rm -f "$jar" "$times"' EXIT
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["shanghai"]["keys"][sys.argv[2]])' "$dir/credentials.json" "$role")
token=$(curl -sk -c "$jar" "$base/signin" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
curl -sk -b "$jar" -c "$jar" -o /dev/null -w "sign-in as shanghai's $role: HTTP %{http_code}\n" \
  --data-urlencode "csrf=$token" --data-urlencode "key=$key" "$base/signin"
for page in "$@"; do
  for _ in $(seq 1 "$n"); do curl -sk -b "$jar" -o /dev/null -w "%{http_code} %{time_total}\n" "$base$page"; done > "$times"
  python3 - "$page" "$times" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[2])]
t = sorted(float(r[1]) * 1000 for r in rows)
codes = ",".join(sorted({r[0] for r in rows}))
print(f"{sys.argv[1]:<10} n={len(t)} HTTP {codes}  p50 {t[len(t)//2]:.1f} ms  p95 {t[int(len(t)*0.95)-1]:.1f} ms  max {t[-1]:.1f} ms")
PY
done
