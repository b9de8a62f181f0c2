#!/usr/bin/env bash
# `make demo`: runs one busybox container in the foreground with BERTH_BIN and shows, from inside it, what the
# runtime set up (hostname, PID namespace, mounts, root). Any runtime with runc's command line works:
#
#   scripts/demo.sh build/bin/berth
#   scripts/demo.sh runc
#
# Exits with the runtime's exit code. Everything it makes lives in one temp dir, removed on exit.
set -euo pipefail

if (($# != 1)); then
    echo "usage: $0 BERTH_BIN" >&2
    exit 2
fi
runtime=$1
if ! command -v "$runtime" >/dev/null; then
    echo "demo: runtime $runtime not found or not executable" >&2
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "demo: containers need root; run as root (or: sudo make demo)" >&2
    exit 1
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d /tmp/berth-demo.XXXXXX)
id=demo-$$
state=$tmp/state
bundle=$tmp/bundle

cleanup() {
    "$runtime" --root "$state" delete --force "$id" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$here/make-bundle.sh" "$bundle" sh /demo.sh
# The rootfs is read-only inside the container, not here: the demo script goes in before the start.
cat >"$bundle/rootfs/demo.sh" <<'EOF'
echo "--- hostname"
hostname
echo "--- pid 1 is: $(tr '\0' ' ' </proc/1/cmdline)"
echo "--- my pid: $$"
echo "--- /proc/self/mountinfo"
cat /proc/self/mountinfo
echo "--- ls /"
ls /
EOF

echo "demo: $runtime --root $state run -b $bundle $id"
set +e
"$runtime" --root "$state" run -b "$bundle" "$id"
rc=$?
set -e
echo "--- exit code: $rc"
exit "$rc"
