#!/usr/bin/env bash
# `make demo`: runs one busybox container in the foreground with BERTH_BIN and shows, from inside it, what the
# runtime set up (hostname, PID namespace, mounts, root). Any runtime with runc's command line works:
#
#   scripts/demo.sh build/bin/berth [build/bin/berthctl]
#   scripts/demo.sh runc
#
# Given BERTHCTL_BIN, it then builds a busybox OCI image locally (scripts/make-oci-busybox.sh, no internet),
# imports it with `berthctl image import` into a temp store root, lists it, mounts its rootfs (an overlay of its
# snapshots with a writable upper dir) and runs a second container on it.
#
# Exits with the runtime's exit code (the first failing one). Everything it makes lives in one temp dir, removed
# on exit with the container, the mount and the image store.
set -euo pipefail

if (($# < 1 || $# > 2)); then
    echo "usage: $0 BERTH_BIN [BERTHCTL_BIN]" >&2
    exit 2
fi
runtime=$1
berthctl=${2:-}
if [[ -n $berthctl && ! -x $berthctl ]]; then
    echo "demo: berthctl $berthctl not found or not executable" >&2
    exit 1
fi
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
image_id=demo-image-$$
state=$tmp/state
bundle=$tmp/bundle
images=$tmp/images
image_bundle=$tmp/image-bundle

cleanup() {
    "$runtime" --root "$state" delete --force "$id" >/dev/null 2>&1 || true
    "$runtime" --root "$state" delete --force "$image_id" >/dev/null 2>&1 || true
    if [[ -n $berthctl ]] && mountpoint -q "$image_bundle/rootfs" 2>/dev/null; then
        "$berthctl" image unmount "$image_bundle/rootfs" >/dev/null 2>&1 || umount -l "$image_bundle/rootfs" || true
    fi
    rm -rf --one-file-system "$tmp"
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
if ((rc != 0)) || [[ -z $berthctl ]]; then
    exit "$rc"
fi

echo
echo "=== a container on a locally built OCI image"
"$here/make-oci-busybox.sh" --name localhost/berth/busybox:demo --archive "$tmp/busybox.oci.tar" "$tmp/layout" \
    >/dev/null
echo "demo: $berthctl image import --root $images $tmp/busybox.oci.tar"
"$berthctl" image import --root "$images" "$tmp/busybox.oci.tar"
echo "demo: $berthctl image list --root $images"
"$berthctl" image list --root "$images"
# The bundle's config as make-bundle.sh writes it, its rootfs the image's: an overlay of the image's snapshots
# with the container's writes in $tmp/image-upper.
"$here/make-bundle.sh" --hostname berth-image-demo "$image_bundle" sh -c \
    'echo "--- /etc/hostname (from the image'"'"'s second layer): $(cat /etc/hostname)"; echo "--- / is:"; grep " / / " /proc/self/mountinfo; echo hello > /hello; echo "--- ls /"; ls /'
# A writable root this time: the writes go to the overlay's upper dir.
sed -i 's/"root": { "path": "rootfs", "readonly": true }/"root": { "path": "rootfs", "readonly": false }/' \
    "$image_bundle/config.json"
rm -rf "$image_bundle/rootfs"
mkdir "$image_bundle/rootfs"
echo "demo: $berthctl image mount --root $images localhost/berth/busybox:demo $image_bundle/rootfs --upper $tmp/image-upper"
"$berthctl" image mount --root "$images" localhost/berth/busybox:demo "$image_bundle/rootfs" --upper "$tmp/image-upper"
echo "demo: $runtime --root $state run -b $image_bundle $image_id"
set +e
"$runtime" --root "$state" run -b "$image_bundle" "$image_id"
rc=$?
set -e
echo "--- exit code: $rc"
echo "--- the container's /hello is in the upper dir, not in the image: $(cat "$tmp/image-upper/upper/hello")"
"$berthctl" image unmount "$image_bundle/rootfs"
"$berthctl" image remove --root "$images" localhost/berth/busybox:demo
exit "$rc"
