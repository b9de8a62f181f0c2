#!/usr/bin/env bash
# `make bench`: the container lifecycle benchmark, berth against crun and runc (see bench/lifecycle.cpp), then the
# image pull benchmark, berthctl against ctr and skopeo+umoci (bench/pull.sh), then berthd through the CRI against
# crun run (bench/cri/cri_bench.cpp; its options in $CRI_BENCH_ARGS, e.g. CRI_BENCH_ARGS="--pods 20 --running 10"),
# then pod networking: RunPodSandbox with a CNI bridge network against hostNetwork and the plugins' own exec time
# (bench/cni/cni_bench.cpp; options in $CNI_BENCH_ARGS, e.g. CNI_BENCH_ARGS="--pods 50").
# then the streaming server's exec round trips and port-forward throughput (bench/stream/stream_bench.cpp; options in
# $STREAM_BENCH_ARGS, e.g. "--rounds 10 --megabytes 64").
#
#   bench/run.sh BUILD_DIR [berth_bench options...]     e.g. bench/run.sh build --rounds 1 --iterations 10
#   bench/run.sh BUILD_DIR lifecycle|pull|cri|cni|stream [...]   only one of them
set -euo pipefail

if (($# < 1)); then
    echo "usage: $0 BUILD_DIR [lifecycle|pull|cri|cni|stream] [--rounds N] [--iterations N] [--runtimes LIST] [--berth PATH]" \
        "[--no-floor]" >&2
    exit 2
fi
build=$1
shift
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
which=all
# Run alone, a berthd benchmark replaces this shell (exec): `timeout` and Ctrl-C then wait for its own cleanup (pods,
# berthd, temp dir; it exits 128+signal) instead of returning while it still runs.
launch=
if (($# > 0)) && [[ $1 == lifecycle || $1 == pull || $1 == cri || $1 == cni || $1 == stream ]]; then
    which=$1
    shift
fi
cri_bench() {
    local bin=$build/bin
    if [[ ! -x $bin/cri_bench || ! -x $bin/berthd || ! -x $bin/berthctl ]]; then
        echo "bench: cri_bench, berthd and berthctl must be built (cmake --build $build)" >&2
        return 1
    fi
    # shellcheck disable=SC2086 # word splitting of the options is wanted
    $launch "$bin/cri_bench" --berthd "$bin/berthd" --berthctl "$bin/berthctl" --source "$repo" ${CRI_BENCH_ARGS:-}
}
cni_bench() {
    local bin=$build/bin
    if [[ ! -x $bin/cni_bench || ! -x $bin/berthd ]]; then
        echo "bench: cni_bench and berthd must be built (cmake --build $build)" >&2
        return 1
    fi
    # shellcheck disable=SC2086 # word splitting of the options is wanted
    $launch "$bin/cni_bench" --berthd "$bin/berthd" ${CNI_BENCH_ARGS:-}
}
stream_bench() {
    local bin=$build/bin
    if [[ ! -x $bin/stream_bench || ! -x $bin/berthd || ! -x $bin/berthctl || ! -x $bin/berth ]]; then
        echo "bench: stream_bench, berthd, berthctl and berth must be built (cmake --build $build)" >&2
        return 1
    fi
    # shellcheck disable=SC2086 # word splitting of the options is wanted
    $launch "$bin/stream_bench" --berthd "$bin/berthd" --berthctl "$bin/berthctl" --berth "$bin/berth" \
        --source "$repo" ${STREAM_BENCH_ARGS:-}
}
if [[ $which == cri || $which == cni || $which == stream ]]; then
    launch="exec"
    "${which}_bench"
    exit
fi
if [[ $which == pull ]]; then
    exec bash "$repo/bench/pull.sh" "$build"
fi
bench=$build/bin/berth_bench
if [[ ! -x $bench ]]; then
    echo "bench: $bench not built (cmake --build $build)" >&2
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "bench: containers need root; run as root (or: sudo make bench)" >&2
    exit 1
fi
if [[ $which == lifecycle ]]; then
    exec "$bench" --make-bundle "$repo/scripts/make-bundle.sh" "$@"
fi
"$bench" --make-bundle "$repo/scripts/make-bundle.sh" "$@"
echo
bash "$repo/bench/pull.sh" "$build"
echo
cri_bench
echo
cni_bench
echo
stream_bench
