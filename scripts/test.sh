#!/usr/bin/env bash
# `npm test`: installs what is missing, lints (ESLint + Prettier: a lint error fails the run), builds, then runs
# every test file against real etcd and, as root, the real kernel inside throwaway network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-deps.sh
npm run --silent lint
[ -f native/build/Release/flannel_udp.node ] && [ -f native/build/Release/sd_notify.node ] || npm run --silent build:native
npm run --silent build
# The single executable (test/netns/single-executable.test.ts); postject's ELF library warns about note sections.
node --import tsx scripts/build-sea.ts 2> >(grep -v "Can't find string offset for section name" >&2)

mapfile -t files < <(find test/unit test/integration test/netns -name '*.test.ts' 2>/dev/null | sort)
if [ "$(id -u)" -ne 0 ]; then
  echo "NOTE: not root — the test/netns/ files will report themselves as skipped (they need network namespaces)." >&2
fi
exec node --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
