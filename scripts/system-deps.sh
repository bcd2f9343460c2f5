#!/usr/bin/env bash
# The Debian packages the build needs, pinned: cmake and nasm build the vendored libjpeg-turbo
# (turbojpeg-sys) that the image pipeline links statically. Installs only what is missing.
set -euo pipefail
PACKAGES=(cmake=3.25.1-1 nasm=2.16.01-1)

missing=()
for pinned in "${PACKAGES[@]}"; do
  name=${pinned%%=*} version=${pinned#*=}
  if [ "$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null || true)" != "$version" ]; then
    missing+=("$pinned")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -ne 0 ] && sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
echo "installing ${missing[*]}" >&2
# Package lists on a fresh machine may be stale: refresh them once if the first try fails.
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" \
  || { "${sudo[@]}" apt-get update -q && "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; }
