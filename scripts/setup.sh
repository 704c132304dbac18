#!/usr/bin/env bash
# Make a fresh clone runnable: npm packages (and the build), plus — when root and missing — the
# Debian packages the NAT lab and the interop tests use. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

lab_packages=(iproute2 nftables conntrack tcpdump coturn miniupnpd-nftables miniupnpc natpmpc iperf3 stun-client)
have_cmd() { command -v "$1" >/dev/null 2>&1; }
missing=()
for cmd_pkg in ip:iproute2 nft:nftables conntrack:conntrack tcpdump:tcpdump turnserver:coturn miniupnpd:miniupnpd-nftables upnpc:miniupnpc natpmpc:natpmpc iperf3:iperf3 stun:stun-client; do
  have_cmd "${cmd_pkg%%:*}" || missing+=("${cmd_pkg##*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && have_cmd apt-get; then
    echo "setup: installing Debian packages for the lab: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${lab_packages[@]}" >/dev/null
  else
    echo "setup: not root (or no apt-get): lab packages missing (${missing[*]}); lab tests will be skipped, the demo runs on loopback" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# TCP TTL priming (native/tcp-ttl, docs/decisions/005-tcp-ttl-priming.md) is a small N-API addon
# built from source. Without it TCP punching still runs, unprimed: a failed build is reported,
# never fatal. Offline, node-gyp needs Node's headers: Debian's nodejs ships them in /usr/include/node.
if [ ! -f native/tcp-ttl/build/Release/tcp_ttl.node ] || [ native/tcp-ttl/tcp_ttl.c -nt native/tcp-ttl/build/Release/tcp_ttl.node ]; then
  nodedir=$(npm config get nodedir 2>/dev/null || true)
  if { [ -z "$nodedir" ] || [ "$nodedir" = undefined ] || [ "$nodedir" = null ]; } && [ -f /usr/include/node/node_api.h ]; then
    export npm_config_nodedir=/usr
  fi
  if ! native_log=$(npm run --silent build:native 2>&1); then
    why=$(printf '%s\n' "$native_log" | grep -m 3 -iE 'error|not found|not ok' | tr '\n' ' ')
    echo "TCP TTL priming unavailable: the native addon did not build (needs python3, make, a C compiler and Node's headers): ${why:-see npm run build:native}" >&2
  fi
fi
