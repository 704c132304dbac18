#!/usr/bin/env bash
# Make a fresh clone runnable: npm packages (and the build), plus — when root and missing — the
# Debian packages the NAT lab, the interop tests and the browser tests (chromium: the dashboard, WebRTC) use.
# Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

lab_packages=(iproute2 nftables conntrack tcpdump coturn miniupnpd-nftables miniupnpc natpmpc iperf3 stun-client redis-server chromium)
have_cmd() { command -v "$1" >/dev/null 2>&1; }
missing=()
for cmd_pkg in ip:iproute2 nft:nftables conntrack:conntrack tcpdump:tcpdump turnserver:coturn miniupnpd:miniupnpd-nftables upnpc:miniupnpc natpmpc:natpmpc iperf3:iperf3 stun:stun-client redis-server:redis-server chromium:chromium; do
  have_cmd "${cmd_pkg%%:*}" || missing+=("${cmd_pkg##*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && have_cmd apt-get; then
    echo "setup: installing Debian packages for the lab: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${lab_packages[@]}" >/dev/null
  else
    echo "setup: not root (or no apt-get): lab packages missing (${missing[*]}); lab and browser tests will be skipped, the demo runs on loopback" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# Three small N-API addons built from source, each optional: TCP TTL priming (native/tcp-ttl,
# docs/decisions/005-tcp-ttl-priming.md; without it TCP punching runs unprimed), batched UDP
# sends and receives (native/udp-batch, docs/decisions/003-stream-transport.md and 009; without it
# sockets send and read one datagram per system call) and the datagram AEAD (native/aead,
# docs/decisions/007-datagram-aead.md; without it datagrams are sealed with node:crypto, the
# same bytes, slower). A failed build is reported with its cause, never fatal. Offline, node-gyp
# needs Node's headers: Debian's nodejs ships them in /usr/include/node (with Node's OpenSSL
# headers in /usr/include/node/openssl, which native/aead compiles against).
nodedir=$(npm config get nodedir 2>/dev/null || true)
if { [ -z "$nodedir" ] || [ "$nodedir" = undefined ] || [ "$nodedir" = null ]; } && [ -f /usr/include/node/node_api.h ]; then
  export npm_config_nodedir=/usr
fi
# Each is rebuilt when missing or older than its sources; scripts/build-native.mjs gives the
# real cause of a failure (node-gyp's own last lines), and says so when a build works.
build_addon() { # directory, target name
  local dir=$1 name=$2
  local out="native/$dir/build/Release/$name.node" stale=
  for source in "native/$dir"/*.c "native/$dir"/*.h; do
    if [ -f "$source" ] && [ "$source" -nt "$out" ]; then stale=1; fi
  done
  if [ ! -f "$out" ] || [ -n "$stale" ]; then
    node scripts/build-native.mjs --verbose-ok "$dir" || true
  fi
}
build_addon tcp-ttl tcp_ttl
build_addon udp-batch udp_batch
build_addon aead aead
