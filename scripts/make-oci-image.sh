#!/usr/bin/env bash
# Builds a one-layer OCI image of Debian's static busybox as an OCI image-layout tarball (an "oci-archive"),
# without a registry or the internet.
#
#   make-oci-image.sh OUT.tar [NAME]
#
# NAME (default localhost/berth-busybox:latest) is written into index.json twice: as
# org.opencontainers.image.ref.name (what `podman load` / `skopeo` read) and as io.containerd.image.name (what
# `ctr image import` reads). The layer is the rootfs that make-bundle.sh builds (busybox + applet symlinks,
# /etc/passwd, /etc/group), as an uncompressed tar with fixed owners and mtimes, so the same busybox gives the
# same digests. The image's config runs `sh` with PATH set. Pure bash plus coreutils and tar.
set -euo pipefail

if (($# < 1 || $# > 2)); then
    echo "usage: $0 OUT.tar [NAME]" >&2
    exit 2
fi
out=$(realpath -m "$1")
name=${2:-localhost/berth-busybox:latest}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

work=$(mktemp -d /tmp/berth-oci-image-XXXXXX)
trap 'rm -rf "$work"' EXIT

"$here/make-bundle.sh" "$work/bundle" >/dev/null
layout=$work/layout
mkdir -p "$layout/blobs/sha256"

# Stores stdin as a blob; prints "<hex digest> <size>".
put_blob() {
    local tmp=$layout/blob.tmp digest size
    cat >"$tmp"
    digest=$(sha256sum "$tmp" | cut -d' ' -f1)
    size=$(stat -c %s "$tmp")
    mv "$tmp" "$layout/blobs/sha256/$digest"
    echo "$digest $size"
}

read -r layer_digest layer_size < <(tar -C "$work/bundle/rootfs" --sort=name --mtime=@0 --owner=0 --group=0 \
    --numeric-owner --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -cf - . | put_blob)

arch=$(uname -m)
case $arch in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
esac

read -r config_digest config_size < <(printf '%s' '{"architecture":"'"$arch"'","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:'"$layer_digest"'"]},"history":[{"created_by":"berth scripts/make-oci-image.sh"}]}' | put_blob)

read -r manifest_digest manifest_size < <(printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$config_digest"'","size":'"$config_size"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'"$layer_digest"'","size":'"$layer_size"'}]}' | put_blob)

printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest_digest"'","size":'"$manifest_size"',"platform":{"architecture":"'"$arch"'","os":"linux"},"annotations":{"io.containerd.image.name":"'"$name"'","org.opencontainers.image.ref.name":"'"$name"'"}}]}' >"$layout/index.json"

mkdir -p "$(dirname "$out")"
tar -C "$layout" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
echo "$out: sha256:$manifest_digest ($name)"
