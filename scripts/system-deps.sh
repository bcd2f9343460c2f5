#!/usr/bin/env bash
# The Debian packages the build and the tests need, pinned: cmake and nasm build the vendored
# libjpeg-turbo (turbojpeg-sys) that the image pipeline links statically; clamav-daemon is the
# clamd the local stack and the tests scan uploads with (scripts/clamd.sh; its own test signatures,
# no freshclam); chromium runs the browser tests. Installs only what is missing.
#
# Chromium and clamav-daemon are pinned too, but Debian replaces them on every security release
# (bookworm-security, bookworm-updates) and drops the old build: when the pinned version is gone, the current one is installed
# (and named), because an old browser cannot be fetched and a test run must not fail for that.
set -euo pipefail
PACKAGES=(cmake=3.25.1-1 nasm=2.16.01-1)
CHROMIUM=148.0.7778.167-1~deb12u1
CLAMAV=1.4.6+dfsg-0+deb12u1

installed() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

missing=()
for pinned in "${PACKAGES[@]}"; do
  name=${pinned%%=*} version=${pinned#*=}
  [ "$(installed "$name")" = "$version" ] || missing+=("$pinned")
done
chromium_wanted=
[ -x /usr/bin/chromium ] || chromium_wanted=yes
clamav_wanted=
[ -x /usr/sbin/clamd ] || clamav_wanted=yes
[ ${#missing[@]} -eq 0 ] && [ -z "$chromium_wanted" ] && [ -z "$clamav_wanted" ] && exit 0

sudo=()
[ "$(id -u)" -ne 0 ] && sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
apt_install() { "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@"; }
refreshed=
refresh() { [ -n "$refreshed" ] || { "${sudo[@]}" apt-get update -q; refreshed=yes; }; }

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  # Package lists on a fresh machine may be stale: refresh them once if the first try fails.
  apt_install "${missing[@]}" || { refresh; apt_install "${missing[@]}"; }
fi
if [ -n "$chromium_wanted" ]; then
  echo "installing chromium=$CHROMIUM" >&2
  apt_install "chromium=$CHROMIUM" || { refresh; apt_install "chromium=$CHROMIUM"; } || {
    echo "chromium $CHROMIUM is no longer in the archive; installing the current one" >&2
    apt_install chromium
  }
  echo "chromium $(installed chromium)" >&2
fi
if [ -n "$clamav_wanted" ]; then
  echo "installing clamav-daemon=$CLAMAV" >&2
  # Its service is never started (scripts/clamd.sh runs clamd with the project's configuration).
  apt_install "clamav-daemon=$CLAMAV" "clamav-base=$CLAMAV" "libclamav12=$CLAMAV" "clamav-freshclam=$CLAMAV" ||
    { refresh; apt_install "clamav-daemon=$CLAMAV" "clamav-base=$CLAMAV" "libclamav12=$CLAMAV" "clamav-freshclam=$CLAMAV"; } || {
    echo "clamav-daemon $CLAMAV is no longer in the archive; installing the current one" >&2
    apt_install clamav-daemon
  }
  echo "clamav-daemon $(installed clamav-daemon)" >&2
fi
