#!/usr/bin/env bash
# Installs everything uploadfs needs to build and test on Debian 12 (run as root).
# The one list of system packages: README and .ci/run both call this script.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (or with sudo)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential pkg-config meson ninja-build \
  libfuse3-dev fuse3 libcurl4-openssl-dev libjson-c-dev libssl-dev libmicrohttpd-dev \
  curl ca-certificates openssl bats jq attr rsync tar coreutils procps psmisc python3 man-db groff-base \
  clang libclang-rt-14-dev valgrind git vim-tiny sqlite3 libsqlite3-dev \
  debhelper dpkg-dev systemd util-linux bsdutils tmux python3-pytest \
  python3-all dh-python >/dev/null
