#!/usr/bin/env bash
# Builds an OCI bundle around Debian's static busybox.
#
#   make-bundle.sh [--terminal] [--hostname NAME] DIR [ARG...]
#
# DIR/rootfs gets bin/busybox with one symlink per applet, /etc/passwd and /etc/group (root, nobody) and the
# usual empty mount points; DIR/config.json is the default runtime config (as `runc spec` writes it) with
# process.args = ARG... (default: sh), process.terminal false unless --terminal, hostname "berth-demo".
# ociVersion is 1.0.2: every field used exists in 1.0, and crun 1.8.1 rejects "1.2.0" as an unknown version.
# Unlike the default it has no /sys/fs/cgroup mount: mounting the host's cgroup hierarchies into the container
# is not what these bundles exist to exercise.
# Pure bash plus coreutils; BUSYBOX overrides the binary (default /bin/busybox, package busybox-static).
set -euo pipefail

usage() {
    echo "usage: $0 [--terminal] [--hostname NAME] DIR [ARG...]" >&2
    exit 2
}

terminal=false
hostname=berth-demo
while (($# > 0)); do
    case $1 in
    --terminal) terminal=true ;;
    --hostname)
        (($# >= 2)) || usage
        hostname=$2
        shift
        ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
    esac
    shift
done
(($# >= 1)) || usage
dir=$1
shift
(($# > 0)) || set -- sh

busybox=${BUSYBOX:-/bin/busybox}
if [[ ! -x $busybox ]]; then
    echo "make-bundle: $busybox not found (apt-get install busybox-static)" >&2
    exit 1
fi

# Prints $1 as a JSON string literal (escapes backslash, quote and control characters).
json_string() {
    local s=$1 code oct c hex
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/\\r}
    for ((code = 1; code < 32; code++)); do
        printf -v oct '%03o' "$code"
        printf -v c "\\$oct"
        [[ $s == *"$c"* ]] || continue
        printf -v hex '\\u%04x' "$code"
        s=${s//"$c"/$hex}
    done
    printf '"%s"' "$s"
}

args_json=
for a in "$@"; do
    args_json+="${args_json:+, }$(json_string "$a")"
done

rootfs=$dir/rootfs
if [[ -e $rootfs ]]; then
    echo "make-bundle: $rootfs already exists" >&2
    exit 1
fi
mkdir -p "$rootfs"/{bin,dev,etc,proc,root,sys,tmp}
chmod 1777 "$rootfs/tmp"
chmod 700 "$rootfs/root"
cp "$busybox" "$rootfs/bin/busybox"
while read -r applet; do
    [[ $applet == busybox || -z $applet ]] && continue
    ln -s busybox "$rootfs/bin/$applet"
done < <("$busybox" --list)

cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF

cat >"$dir/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": $terminal,
    "user": { "uid": 0, "gid": 0 },
    "args": [ $args_json ],
    "env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "TERM=xterm"
    ],
    "cwd": "/",
    "capabilities": {
      "bounding": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "effective": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "permitted": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ]
    },
    "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": $(json_string "$hostname"),
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
      "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
      "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
      "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
    { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
      "options": [ "nosuid", "noexec", "nodev" ] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs",
      "options": [ "nosuid", "noexec", "nodev", "ro" ] }
  ],
  "linux": {
    "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
    "namespaces": [
      { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }
    ],
    "maskedPaths": [
      "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
      "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
    ],
    "readonlyPaths": [ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" ]
  }
}
EOF
