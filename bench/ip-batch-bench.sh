#!/usr/bin/env bash
# Time `node apply` against raw ip/bridge -batch on 5,000 vxlan peers (15,000 entries) in a throw-away namespace.
# Root only; the namespace is deleted on exit. Usage: bench/ip-batch-bench.sh [peers] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then echo "ip-batch-bench: needs root (creates a network namespace)" >&2; exit 2; fi
exec node --import tsx bench/ip-batch-bench.ts "${1:-5000}" "${2:-3}"
