#!/usr/bin/env bash
# Puts this machine's built addons (udp forwarder, sd_notify) where the npm package carries it (native/prebuilt/<platform>-<arch>/),
# building it first if needed. Run by `npm pack` (prepack).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f native/build/Release/flannel_udp.node ] && [ -f native/build/Release/sd_notify.node ] || npm run --silent build:native
target="native/prebuilt/$(node -p 'process.platform + "-" + process.arch')"
mkdir -p "$target"
cp native/build/Release/flannel_udp.node native/build/Release/sd_notify.node "$target/"
