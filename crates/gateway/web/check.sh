#!/usr/bin/env bash
# Fails when what is committed is not what the sources produce: the generated protobuf code
# (src/gen, from proto/tailor/{mobile,common}) and the built page (dist/, which the gateway
# embeds). Also type-checks the sources. Regenerates and rebuilds into a temporary directory;
# the working tree is never touched. Needs `npm ci` first. CI runs it (.ci/run).
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x node_modules/.bin/buf ]; then
  echo "check.sh: run 'npm ci' in $(pwd) first" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

echo "check: generated code (buf generate) matches src/gen"
node_modules/.bin/buf generate --output "$tmp"
if ! diff -r src/gen "$tmp/src/gen"; then
  echo "check.sh: src/gen is out of date with proto/: run 'npm run generate && npm run build' and commit" >&2
  status=1
fi

echo "check: types (tsc --noEmit)"
node_modules/.bin/tsc --noEmit

echo "check: the build matches dist/"
node build.mjs "$tmp/dist" >/dev/null
if ! diff -r dist "$tmp/dist" >/dev/null; then
  diff -r --brief dist "$tmp/dist" >&2 || true
  echo "check.sh: dist/ is out of date with src/: run 'npm run build' and commit" >&2
  status=1
fi

# The gateway embeds exactly these files (include_str!); anything else would not be served.
expected="app.css app.js index.html"
actual=$(cd dist && ls | sort | tr '\n' ' ' | sed 's/ $//')
if [ "$actual" != "$expected" ]; then
  echo "check.sh: dist/ must hold exactly: $expected (has: $actual)" >&2
  status=1
fi

[ "$status" -eq 0 ] && echo "check: ok"
exit "$status"
