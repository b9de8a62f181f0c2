#!/usr/bin/env bash
# Installs berth's default CNI network (docs/networking.md) as /etc/cni/net.d/10-berth.conflist, only when the
# config dir holds no network configuration yet (*.conflist, *.conf, *.json): an existing network is never
# replaced or shadowed. Idempotent. Run by `make deps` (scripts/deps.sh) as root.
#
#   scripts/install-cni-config.sh [CONF_DIR]     (default /etc/cni/net.d)
#
# The network: bridge "berth0" with host-local IPAM on 10.87.0.0/16 (the host side is 10.87.0.1), portmap for
# hostPort. Pods get the subnet's own route only (other pods, and the host at 10.87.0.1): no default route and no
# masquerade, so nothing of theirs leaves the machine.
set -euo pipefail

dir=${1:-/etc/cni/net.d}
shopt -s nullglob
existing=("$dir"/*.conflist "$dir"/*.conf "$dir"/*.json)
if ((${#existing[@]} > 0)); then
    echo "cni: $dir already has a network configuration (${existing[0]##*/}); berth's default not installed"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "cni: $dir has no network configuration; run as root to install berth's default" >&2
    exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp "$dir/.10-berth.XXXXXX")
cat >"$tmp" <<'JSON'
{
  "cniVersion": "1.0.0",
  "name": "berth",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "berth0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.87.0.0/16", "gateway": "10.87.0.1" }]]
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true }
    }
  ]
}
JSON
chmod 0644 "$tmp"
mv "$tmp" "$dir/10-berth.conflist"
echo "cni: installed $dir/10-berth.conflist (bridge berth0, 10.87.0.0/16, portmap)"
