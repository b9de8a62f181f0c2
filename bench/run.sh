#!/usr/bin/env bash
# `make bench`: the container lifecycle benchmark, berth against crun and runc (see bench/lifecycle.cpp), then the
# image pull benchmark, berthctl against ctr and skopeo+umoci (bench/pull.sh).
#
#   bench/run.sh BUILD_DIR [berth_bench options...]     e.g. bench/run.sh build --rounds 1 --iterations 10
#   bench/run.sh BUILD_DIR lifecycle|pull [...]          only one of them
set -euo pipefail

if (($# < 1)); then
    echo "usage: $0 BUILD_DIR [lifecycle|pull] [--rounds N] [--iterations N] [--runtimes LIST] [--berth PATH]" \
        "[--no-floor]" >&2
    exit 2
fi
build=$1
shift
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
which=all
if (($# > 0)) && [[ $1 == lifecycle || $1 == pull ]]; then
    which=$1
    shift
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
    "$bench" --make-bundle "$repo/scripts/make-bundle.sh" "$@"
if [[ -x $build/bin/cri_bench && -x $build/bin/berthd && -x $build/bin/berthctl ]]; then
    echo
    # shellcheck disable=SC2086 # word splitting of the options is wanted
    "$build/bin/cri_bench" --berthd "$build/bin/berthd" --berthctl "$build/bin/berthctl" --source "$repo" \
        ${CRI_BENCH_ARGS:-}
fi
fi
"$bench" --make-bundle "$repo/scripts/make-bundle.sh" "$@"
echo
bash "$repo/bench/pull.sh" "$build"
