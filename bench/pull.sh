#!/usr/bin/env bash
# Pull + unpack of a ~200 MB, 10-layer image from a local registry: `berthctl image pull` against containerd's
# `ctr pull` and `skopeo copy` + `umoci unpack`, in one run, repetitions alternating between the three.
#
#   bench/pull.sh BUILD_DIR            (as root; env: REPS=5, LAYER_MB=20, LAYERS=9 random layers + busybox)
#
# The image is built once per run: busybox as the base layer, then LAYERS layers of LAYER_MB incompressible random
# data each, every layer gzip'd; skopeo pushes it to Debian's docker-registry on 127.0.0.1 (plain HTTP, a port in
# 15180-15199). Every repetition starts from nothing: berth pulls into a fresh store root; containerd (Debian's,
# started here on a private root/state/socket, CRI plugin off) gets a fresh root and is restarted; skopeo copies
# into a fresh OCI layout that umoci unpacks into a fresh bundle. Times are wall clock around the whole pull
# including unpack; peak RSS is /usr/bin/time's %M of each process (for containerd also its daemon's VmHWM: the
# daemon does the work, ctr only asks). Medians and ratios are printed at the end.
# Everything (registry, containerd, mounts, temp dirs) is removed on any exit.
set -euo pipefail

if (($# != 1)); then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
berthctl=$build/bin/berthctl
reps=${REPS:-5}
layer_mb=${LAYER_MB:-20}
layers=${LAYERS:-9}

if [[ $(id -u) -ne 0 ]]; then
    echo "bench/pull: needs root (containerd, overlay mounts); run as root (or: sudo make bench)" >&2
    exit 1
fi
for tool in "$berthctl" docker-registry skopeo umoci containerd ctr /usr/bin/time gzip; do
    if ! command -v "$tool" >/dev/null; then
        echo "bench/pull: $tool not found (make build; scripts/deps.sh)" >&2
        exit 1
    fi
done

tmp=$(mktemp -d /tmp/berth-bench-pull.XXXXXX)
registry_pid=
containerd_pid=

stop_pid() {  # stops one process this script started, by pid
    local pid=$1
    [[ -n $pid ]] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

unmount_below() {  # every mount under $1, deepest first (containerd's snapshot mounts, if any are left)
    local m
    { grep -o " $1/[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}

cleanup() {
    stop_pid "$containerd_pid"
    stop_pid "$registry_pid"
    unmount_below "$tmp"
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
    for _ in $(seq 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# --- the registry
port=
for p in $(seq 15180 15199); do
    if port_free "$p"; then port=$p; break; fi
done
[[ -n $port ]] || { echo "bench/pull: no free port in 15180-15199" >&2; exit 1; }
mkdir -p "$tmp/registry"
cat >"$tmp/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $tmp/registry/data
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$tmp/registry/config.yml" >"$tmp/registry/log" 2>&1 &
registry_pid=$!
wait_port "$port" || { echo "bench/pull: docker-registry did not listen on $port:" >&2; cat "$tmp/registry/log" >&2; exit 1; }
host=127.0.0.1:$port
ref=$host/bench/big:v1

# --- the image: busybox + random layers, all gzip, as an OCI layout, pushed with skopeo
echo "bench/pull: building a $((layers + 1))-layer image (busybox + $layers x $layer_mb MiB random), pushing to $host"
layout=$tmp/layout
mkdir -p "$layout/blobs/sha256"
put_blob() {  # file -> blob; prints "<hex> <size>"
    local hex size
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    mv "$1" "$layout/blobs/sha256/$hex"
    echo "$hex $size"
}
case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
*) arch=$(uname -m) ;;
esac
diff_ids=() layer_descs=()
# Base layer: Debian's static busybox with its applet links.
mkdir -p "$tmp/base/bin" "$tmp/base/etc" "$tmp/base/tmp"
cp /bin/busybox "$tmp/base/bin/busybox"
for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -s busybox "$tmp/base/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$tmp/base/etc/passwd"
make_layer() {  # dir -> gzip'd layer blob; appends to diff_ids and layer_descs
    tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner -C "$1" -cf "$tmp/layer.tar" .
    diff_ids+=("\"sha256:$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)\"")
    gzip -1n <"$tmp/layer.tar" >"$tmp/layer.tar.gz"
    rm -f "$tmp/layer.tar"
    local hex size
    read -r hex size < <(put_blob "$tmp/layer.tar.gz")
    layer_descs+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$hex\",\"size\":$size}")
}
make_layer "$tmp/base"
for i in $(seq 1 "$layers"); do
    rm -rf "$tmp/l"
    mkdir -p "$tmp/l/data"
    head -c $((layer_mb << 20)) /dev/urandom >"$tmp/l/data/random-$i"
    make_layer "$tmp/l"
done
rm -rf "$tmp/l" "$tmp/base"
join() { local IFS=,; echo "$*"; }
printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$arch" "$(join "${diff_ids[@]}")" >"$tmp/config.json"
read -r config_hex config_size < <(put_blob "$tmp/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$config_hex" "$config_size" "$(join "${layer_descs[@]}")" >"$tmp/manifest.json"
read -r manifest_hex manifest_size < <(put_blob "$tmp/manifest.json")
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
    "$manifest_hex" "$manifest_size" >"$layout/index.json"
total_bytes=$(du -sb "$layout/blobs" | cut -f1)
skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$layout:v1" "docker://$ref"
rm -rf "$layout"
echo "bench/pull: image $ref: $((total_bytes >> 20)) MiB in $((layers + 1)) gzip layers"

# --- containerd on a private root/state/socket, fresh for every repetition
start_containerd() {
    local d=$tmp/containerd
    rm -rf --one-file-system "$d"
    mkdir -p "$d/root" "$d/state"
    cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
    containerd --config "$d/config.toml" >"$d/log" 2>&1 &
    containerd_pid=$!
    for _ in $(seq 100); do
        [[ -S $d/containerd.sock ]] && ctr --address "$d/containerd.sock" version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench/pull: containerd did not start:" >&2
    cat "$d/log" >&2
    exit 1
}
stop_containerd() {
    stop_pid "$containerd_pid"
    containerd_pid=
    unmount_below "$tmp/containerd"
    rm -rf --one-file-system "$tmp/containerd"
}

now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }
rss_kib() { tail -n 1 "$1"; }  # /usr/bin/time -f %M -o FILE writes the KiB on its last line

berth_ms=() ctr_ms=() skopeo_ms=()
berth_rss=() ctr_rss=() containerd_rss=() skopeo_rss=() umoci_rss=()

run_berth() {
    local root=$tmp/berth-root t
    rm -rf --one-file-system "$root"
    t=$(now_ns)
    /usr/bin/time -f %M -o "$tmp/rss" "$berthctl" image pull --root "$root" --insecure-registry "$host" "$ref" \
        >"$tmp/berth.out" 2>&1 || { cat "$tmp/berth.out" >&2; exit 1; }
    berth_ms+=("$(ms_since "$t")")
    berth_rss+=("$(rss_kib "$tmp/rss")")
    rm -rf --one-file-system "$root"
}

run_ctr() {
    local t sock=$tmp/containerd/containerd.sock hwm
    start_containerd
    t=$(now_ns)
    /usr/bin/time -f %M -o "$tmp/rss" ctr --address "$sock" -n bench images pull --plain-http "$ref" >"$tmp/ctr.out" 2>&1 ||
        { cat "$tmp/ctr.out" >&2; exit 1; }
    ctr_ms+=("$(ms_since "$t")")
    ctr_rss+=("$(rss_kib "$tmp/rss")")
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$containerd_pid/status")
    containerd_rss+=("$hwm")
    stop_containerd
}

run_skopeo_umoci() {
    local t d=$tmp/skopeo
    rm -rf --one-file-system "$d"
    mkdir -p "$d"
    t=$(now_ns)
    /usr/bin/time -f %M -o "$tmp/rss" skopeo --insecure-policy copy --quiet --src-tls-verify=false "docker://$ref" \
        "oci:$d/layout:v1" >"$tmp/skopeo.out" 2>&1 || { cat "$tmp/skopeo.out" >&2; exit 1; }
    skopeo_rss+=("$(rss_kib "$tmp/rss")")
    /usr/bin/time -f %M -o "$tmp/rss" umoci unpack --image "$d/layout:v1" "$d/bundle" >"$tmp/umoci.out" 2>&1 ||
        { cat "$tmp/umoci.out" >&2; exit 1; }
    skopeo_ms+=("$(ms_since "$t")")
    umoci_rss+=("$(rss_kib "$tmp/rss")")
    rm -rf --one-file-system "$d"
}

echo "bench/pull: $reps repetitions, alternating berth, ctr, skopeo+umoci"
for i in $(seq 1 "$reps"); do
    sync
    run_berth
    sync
    run_ctr
    sync
    run_skopeo_umoci
    echo "  rep $i: berth ${berth_ms[-1]} ms, ctr ${ctr_ms[-1]} ms, skopeo+umoci ${skopeo_ms[-1]} ms"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

b=$(median "${berth_ms[@]}") c=$(median "${ctr_ms[@]}") s=$(median "${skopeo_ms[@]}")
echo
echo "pull + unpack of $((total_bytes >> 20)) MiB, $((layers + 1)) layers, median of $reps (wall ms):"
printf '  %-28s %8s ms   peak RSS %s\n' "berthctl image pull" "$b" "$(mib "$(median "${berth_rss[@]}")")"
printf '  %-28s %8s ms   peak RSS ctr %s + containerd %s\n' "ctr pull (containerd)" "$c" \
    "$(mib "$(median "${ctr_rss[@]}")")" "$(mib "$(median "${containerd_rss[@]}")")"
printf '  %-28s %8s ms   peak RSS skopeo %s, umoci %s\n' "skopeo copy + umoci unpack" "$s" \
    "$(mib "$(median "${skopeo_rss[@]}")")" "$(mib "$(median "${umoci_rss[@]}")")"
echo "  time ratio berth/ctr = $(ratio "$b" "$c") (berth $(ratio "$c" "$b")x as fast; goal >= 1.5x)"
echo "  time ratio berth/skopeo+umoci = $(ratio "$b" "$s") (berth $(ratio "$s" "$b")x as fast)"
