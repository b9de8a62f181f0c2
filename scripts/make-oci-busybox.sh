#!/usr/bin/env bash
# Builds an OCI image layout (image-spec 1.x) of Debian's static busybox, for import tests and demos.
#
#   make-oci-busybox.sh [--name REF] [--archive FILE] DIR
#
# DIR gets oci-layout, index.json and blobs/sha256/. The image has two layers, so importing it exercises
# stacking: layer 1 (gzip) holds bin/busybox with a symlink per applet, etc/passwd, etc/group, etc/hostname
# ("layer1"), tmp/ (1777) and tmp/removed; layer 2 (uncompressed tar) replaces etc/hostname with "berth" and
# deletes tmp/removed with a whiteout. The manifest is referenced from index.json with the annotation
# org.opencontainers.image.ref.name=REF (default localhost/berth/busybox:latest). --archive also writes the
# layout as an oci-archive tar. Only bash, coreutils, tar, gzip and sha256sum; deterministic for one busybox.
# BUSYBOX overrides the binary (default /bin/busybox, package busybox-static).
set -euo pipefail

usage() {
    echo "usage: $0 [--name REF] [--archive FILE] DIR" >&2
    exit 2
}

name=localhost/berth/busybox:latest
archive=
while (($# > 0)); do
    case $1 in
    --name) (($# >= 2)) || usage; name=$2; shift ;;
    --archive) (($# >= 2)) || usage; archive=$2; shift ;;
    -*) usage ;;
    *) break ;;
    esac
    shift
done
(($# == 1)) || usage
out=$1
busybox=${BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] || { echo "$0: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }

case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
*) arch=$(uname -m) ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/blobs/sha256"

# Deterministic tar of a directory's contents: sorted, fixed mtime, numeric root ownership, no atime/ctime.
make_tar() {
    tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner --format=pax \
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$1" -cf - .
}

# Stores stdin as a blob; prints "<hex> <size>".
put_blob() {
    local tmp="$work/blob"
    cat >"$tmp"
    local hex size
    hex=$(sha256sum "$tmp" | cut -d' ' -f1)
    size=$(stat -c %s "$tmp")
    mv "$tmp" "$out/blobs/sha256/$hex"
    echo "$hex $size"
}

sha_of() { sha256sum | cut -d' ' -f1; }

# Layer 1: busybox and the applet links.
l1="$work/l1"
mkdir -p "$l1/bin" "$l1/etc" "$l1/tmp" "$l1/root"
cp "$busybox" "$l1/bin/busybox"
chmod 0755 "$l1/bin/busybox"
for applet in $("$busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$l1/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$l1/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$l1/etc/group"
echo layer1 >"$l1/etc/hostname"
echo "deleted by layer 2" >"$l1/tmp/removed"
chmod 1777 "$l1/tmp"
chmod 0700 "$l1/root"
make_tar "$l1" >"$work/l1.tar"
diff1=$(sha_of <"$work/l1.tar")
read -r layer1 size1 < <(gzip -9n <"$work/l1.tar" | put_blob)

# Layer 2: a replaced file and a whiteout, uncompressed.
l2="$work/l2"
mkdir -p "$l2/etc" "$l2/tmp"
echo berth >"$l2/etc/hostname"
: >"$l2/tmp/.wh.removed"
chmod 1777 "$l2/tmp"
make_tar "$l2" >"$work/l2.tar"
diff2=$(sha_of <"$work/l2.tar")
read -r layer2 size2 < <(put_blob <"$work/l2.tar")

config=$(printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]},"history":[{"created_by":"make-oci-busybox.sh: busybox"},{"created_by":"make-oci-busybox.sh: hostname, whiteout"}]}' \
    "$arch" "$diff1" "$diff2")
read -r config_hex config_size < <(printf '%s' "$config" | put_blob)

manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config_hex" "$config_size" "$layer1" "$size1" "$layer2" "$size2")
read -r manifest_hex manifest_size < <(printf '%s' "$manifest" | put_blob)

printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_hex" "$manifest_size" "$arch" "$name" >"$out/index.json"

if [[ -n $archive ]]; then
    tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner -C "$out" -cf "$archive" \
        oci-layout index.json blobs
fi
echo "sha256:$manifest_hex"
