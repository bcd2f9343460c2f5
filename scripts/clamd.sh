#!/usr/bin/env bash
# Runs Debian's clamd (scripts/system-deps.sh installs it, pinned) in the foreground on
# 127.0.0.1:<port> with the project's own test signatures (tests/clamav/*.ndb: body signatures,
# found anywhere in a file, in archives and in PDF streams) and nothing else: no freshclam, no
# network, ready in seconds. Its files (configuration, log, temporary files) go in <dir>.
# usage: scripts/clamd.sh <port> <dir>
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${1:?port} dir=${2:?dir}
mkdir -p "$dir/tmp"
cat >"$dir/clamd.conf" <<CONF
Foreground yes
TCPAddr 127.0.0.1
TCPSocket $port
DatabaseDirectory $root/tests/clamav
TemporaryDirectory $dir/tmp
PidFile $dir/clamd.pid
LogFile $dir/clamd.log
LogTime yes
# The process function sends at most CLAMAV_STREAM_MAX_BYTES (64 MiB by default) per stream.
StreamMaxLength 64M
MaxScanSize 256M
MaxFileSize 128M
Bytecode no
# ClamAV decodes images to match image fuzzy-hash signatures: 23 s for a 1 MB JPEG that claims
# giant dimensions. The test signatures have none; a production clamd may want the same.
ScanImageFuzzyHash no
CONF
exec /usr/sbin/clamd --config-file="$dir/clamd.conf"
