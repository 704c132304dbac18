#!/usr/bin/env bash
# Make a fresh clone runnable: npm packages (and the build), plus — when root and missing — the
# Debian packages the NAT lab and the interop tests use. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

lab_packages=(iproute2 nftables conntrack tcpdump coturn miniupnpd-nftables miniupnpc natpmpc iperf3)
have_cmd() { command -v "$1" >/dev/null 2>&1; }
missing=()
for cmd_pkg in ip:iproute2 nft:nftables conntrack:conntrack tcpdump:tcpdump turnserver:coturn miniupnpd:miniupnpd-nftables upnpc:miniupnpc natpmpc:natpmpc iperf3:iperf3; do
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
