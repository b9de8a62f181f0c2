#!/usr/bin/env bash
# Installs every build and test dependency of berth from Debian. Idempotent: re-running installs nothing new.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  nlohmann-json3-dev libfmt-dev libseccomp-dev libcap-dev
  # images: sha256 (OpenSSL EVP), layer unpack (libarchive with gzip and zstd)
  libssl-dev libarchive-dev libzstd-dev zlib1g-dev zstd
  # berthd/berthctl: the CRI gRPC contract (proto/api.proto) compiled at build time
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # berthctl: pod and container config files in YAML, -o yaml
  libyaml-cpp-dev
  # image metadata (src/store)
  libsqlite3-dev
  # berthd's configuration file (berth.toml), header-only
  libtomlplusplus-dev
  # registry client (src/image/registry.cpp)
  libcurl4-openssl-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # test images and peer runtimes
  busybox-static runc crun iproute2 util-linux procps
  # real clients that drive berth in tests/integration/clients_test.cpp (ctr and containerd-shim-runc-v2 come
  # with containerd), curl for containerd's Tasks.Update API, which ctr 1.6 has no command for
  podman containerd conmon curl
  # a real registry for tests/integration/registry_test.cpp: docker-registry, htpasswd (apache2-utils) for its
  # basic auth, skopeo to push test images into it, openssl to make its test CA and certificates
  docker-registry apache2-utils skopeo openssl
  # bench/pull.sh: umoci (with skopeo) and containerd's ctr as the peers of `berthctl image pull`, GNU time for
  # peak RSS
  umoci time
  # berthd's streaming server: WebSocket and HTTP parsing (Boost.Beast, header-only); an independent WebSocket client
  # for its tests (python3-websockets)
  libboost-dev python3-websockets
  # pod networking: CNI plugins (bridge, host-local, portmap, loopback), runsc (gVisor) as a RuntimeClass handler
  containernetworking-plugins runsc
  # portmap (hostPort) programs iptables
  iptables
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "deps: all ${#packages[@]} packages present"
else
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: missing ${missing[*]}; run as root (or: sudo make deps)" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# berthd's default pod network, only where the host has none (scripts/install-cni-config.sh, docs/networking.md).
bash "$(dirname "${BASH_SOURCE[0]}")/install-cni-config.sh"
