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
# Then (berthd_demo) it starts berthd on a temporary root and socket with that image imported and runs a pod
# through `berthctl run`, showing its logs, then a detached one on a private CNI network with pods/ps/exec (its
# address; stdin streamed through berthd's streaming server)/logs; everything is stopped on exit.
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

# ---- berthd: a pod through the CRI (berthctl run) ----
# berthd (beside berthctl) on its own root, state dir and socket under $tmp, the busybox image imported into that
# root; `berthctl run` makes a pod and a container, follows its log and removes both. Its own EXIT trap removes
# every pod (their monitors outlive berthd), stops berthd and then runs the cleanup above.
berthd_demo() {
    # Globals, not locals: the EXIT trap reads them after this function has returned.
    bd_pid=
    berthd=$(dirname "$berthctl")/berthd
    if [[ ! -x $berthd ]]; then
        echo "demo: $berthd not built" >&2
        return 1
    fi
    bd_root=$tmp/berthd-root
    bd_state=$tmp/berthd-state
    bd_socket=$tmp/berthd.sock
    bd_logs=$tmp/pod-logs
    berthd_demo_cleanup() {
        if [[ -n ${bd_pid:-} ]]; then
            "$berthctl" --socket "$bd_socket" rmp --all --force >/dev/null 2>&1 || true
            kill "$bd_pid" 2>/dev/null || true
            wait "$bd_pid" 2>/dev/null || true
        fi
        # The demo network's bridge (made by the bridge plugin at the first pod; DEL leaves bridges in place).
        ip link del berthdemo0 2>/dev/null || true
        cleanup
    }
    trap berthd_demo_cleanup EXIT

    echo
    echo "=== a pod through berthd: berthctl run"
    echo "demo: $berthctl image import --root $bd_root $tmp/busybox.oci.tar"
    "$berthctl" image import --root "$bd_root" "$tmp/busybox.oci.tar"
    # The defaults, not the host's /etc/berth/berth.toml, except the pod network: a private one of the demo's own
    # (bridge berthdemo0 without a host address, 10.86.0.0/24, IP reservations under $tmp), so the demo neither
    # uses nor changes the host's CNI networks.
    mkdir -p "$tmp/net.d"
    cat >"$tmp/net.d/10-demo.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "berth-demo",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "berthdemo0",
      "isGateway": false,
      "ipMasq": false,
      "ipam": { "type": "host-local", "dataDir": "$tmp/ipam", "ranges": [[{ "subnet": "10.86.0.0/24" }]] }
    }
  ]
}
JSON
    printf '[cni]\nconf_dir = "%s"\n' "$tmp/net.d" >"$tmp/berth.toml"
    echo "demo: $berthd --socket $bd_socket --root $bd_root --state-dir $bd_state"
    "$berthd" --config "$tmp/berth.toml" --socket "$bd_socket" --root "$bd_root" --state-dir "$bd_state" \
        2>"$tmp/berthd.log" &
    bd_pid=$!
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -S $bd_socket ]] && "$berthctl" --socket "$bd_socket" version >/dev/null 2>&1 && break
        if ! kill -0 "$bd_pid" 2>/dev/null; then
            echo "demo: berthd exited:" >&2
            cat "$tmp/berthd.log" >&2
            return 1
        fi
        sleep 0.1
    done
    export BERTH_SOCKET=$bd_socket
    echo "demo: berthctl images"
    "$berthctl" images
    echo "demo: berthctl run --rm --name demo-pod localhost/berth/busybox:demo -- sh -c '...'"
    set +e
    "$berthctl" run --rm --name demo-pod --log-dir "$bd_logs" localhost/berth/busybox:demo -- sh -c \
        'echo "hello from a berthd pod"; echo "--- hostname: $(hostname)"; echo "--- pid 1: $(tr "\0" " " </proc/1/cmdline)"; echo "--- ls /"; ls /; echo "a line on stderr" >&2; exit 0'
    rc=$?
    set -e
    echo "--- exit code: $rc"
    echo "demo: a detached pod, then pods, ps, exec, logs, rmp"
    local ids pod ctr
    ids=$("$berthctl" run -d --name demo-sleeper --log-dir "$bd_logs" localhost/berth/busybox:demo -- \
        sh -c 'echo sleeper up; exec sleep 60')
    pod=$(sed -n 1p <<<"$ids")
    ctr=$(sed -n 2p <<<"$ids")
    "$berthctl" pods
    "$berthctl" ps
    echo "demo: berthctl exec $ctr -- cat /etc/hostname"
    "$berthctl" exec "$ctr" -- cat /etc/hostname
    echo "demo: berthctl exec $ctr -- ip -4 addr show eth0   (the pod's address on the demo's CNI bridge)"
    "$berthctl" exec "$ctr" -- ip -4 addr show eth0
    echo "demo: echo ... | berthctl exec -i $ctr -- wc -c   (stdin streamed to the container over SPDY)"
    echo "these bytes travel over berthd's streaming server" | "$berthctl" exec -i "$ctr" -- wc -c
    echo "demo: berthctl logs $ctr"
    "$berthctl" logs "$ctr"
    "$berthctl" rmp --force "$pod"
    return "$rc"
}

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
if ((rc != 0)); then
    exit "$rc"
fi
berthd_demo
