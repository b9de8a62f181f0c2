#!/usr/bin/env bash
# Memory of one container monitor, side by side: berth-monitor (libberth in process), berth-monitor driving runc,
# and conmon driving runc (as CRI-O runs it), each on N `sleep` containers of the busybox bundle at once.
# Prints the mean PSS and USS (Private_Clean + Private_Dirty) per monitor process from /proc/<pid>/smaps_rollup.
# PSS splits shared pages among the processes mapping them: the static berth-monitor shares its text only with
# other monitors, conmon shares libc and glib with the whole system, so N=1 and N>1 are both shown.
#
#   bench/monitor_pss.sh BUILD_DIR [N...]      (root; default N: 1 10)
set -euo pipefail

build=${1:?usage: $0 BUILD_DIR [N...]}
shift
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 10)
monitor=$(realpath "$build/bin/berth-monitor")
src=$(cd "$(dirname "$0")/.." && pwd)
runc=$(command -v runc || true)
conmon=$(command -v conmon || true)

tmp=$(mktemp -d /tmp/berth-monitor-pss-XXXXXX)
ids=()
cleanup() {
    for id in "${ids[@]}"; do
        "$build/bin/berth" --root "$tmp/berth" delete --force "$id" >/dev/null 2>&1 || true
        [ -z "$runc" ] || "$runc" --root "$tmp/runc" delete --force "$id" >/dev/null 2>&1 || true
    done
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
"$src/scripts/make-bundle.sh" "$tmp/bundle" sleep 1000 >/dev/null

# mean "PSS USS" in KiB over the pids given
measure() {
    local pss=0 uss=0 n=0 p
    for p in "$@"; do
        read -r a b < <(awk '/^Pss:/{p=$2} /^Private_(Clean|Dirty):/{u+=$2} END{print p, u}' "/proc/$p/smaps_rollup")
        pss=$((pss + a)); uss=$((uss + b)); n=$((n + 1))
    done
    echo "$((pss / n)) $((uss / n))"
}

# berth-monitor; $1 = label, $2 = "" (libberth) or a runtime path; prints the mean over $3 monitors
run_berth() {
    local label=$1 runtime=$2 count=$3 pids=() i id line
    for ((i = 0; i < count; i++)); do
        id="pss-bm${runtime:+-runc}-$count-$i"
        ids+=("$id")
        local args=(--id "$id" --bundle "$tmp/bundle" --dir "$tmp/mon/$id" --log-path "$tmp/logs/$id.log" --start
                    --sync-fd 3)
        if [ -n "$runtime" ]; then args+=(--root "$tmp/runc" --runtime "$runtime"); else args+=(--root "$tmp/berth"); fi
        mkdir -p "$tmp/logs"
        line=$("$monitor" "${args[@]}" 3>&1 | head -n1)
        case $line in *'"error"'*) echo "$label: $line" >&2; return 1 ;; esac
        pids+=("$(sed 's/.*"pid":\([0-9]*\).*/\1/' <<<"$line")")
    done
    read -r pss uss < <(measure "${pids[@]}")
    printf '  %-28s N=%-3d PSS %5d KiB   USS %5d KiB\n' "$label" "$count" "$pss" "$uss"
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}

run_conmon() {
    local count=$1 pids=() i id w
    for ((i = 0; i < count; i++)); do
        id="pss-conmon-$count-$i"
        ids+=("$id")
        mkdir -p "$tmp/cm/$id" "$tmp/exits" "$tmp/sockets"
        "$conmon" --api-version 1 -c "$id" -u "$id" -n "k8s_$id" -r "$runc" -b "$tmp/bundle" \
            -p "$tmp/cm/$id/pidfile" -P "$tmp/cm/$id/conmon.pid" -l "k8s-file:$tmp/logs/$id.log" \
            --exit-dir "$tmp/exits" --socket-dir-path "$tmp/sockets" --log-level error --syslog=false \
            --runtime-arg "--root=$tmp/runc" >/dev/null 2>&1
        # conmon's first process returns before the runtime's create is done: wait for its pid file.
        for ((w = 0; w < 200; w++)); do [ -s "$tmp/cm/$id/pidfile" ] && break; sleep 0.05; done
        "$runc" --root "$tmp/runc" start "$id"
        pids+=("$(cat "$tmp/cm/$id/conmon.pid")")
    done
    read -r pss uss < <(measure "${pids[@]}")
    printf '  %-28s N=%-3d PSS %5d KiB   USS %5d KiB\n' "conmon $(conmon --version | head -n1 | awk '{print $3}') + runc" \
        "$count" "$pss" "$uss"
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}

echo "monitor memory per container (sleep containers, busybox bundle)"
for n in "${counts[@]}"; do
    run_berth "berth-monitor (libberth)" "" "$n"
    [ -z "$runc" ] || run_berth "berth-monitor + runc" "$runc" "$n"
    [ -z "$conmon" ] || [ -z "$runc" ] || run_conmon "$n"
    for id in "${ids[@]}"; do
        "$build/bin/berth" --root "$tmp/berth" delete --force "$id" >/dev/null 2>&1 || true
        [ -z "$runc" ] || "$runc" --root "$tmp/runc" delete --force "$id" >/dev/null 2>&1 || true
    done
done
