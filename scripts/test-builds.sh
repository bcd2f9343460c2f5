#!/usr/bin/env bash
# The builds `make test` needs, in two lanes at once: `sam build` (the arm64 release build) in one,
# and in the other the lints, the debug test build, media-dev and s3s-fs. sam build spends about a
# third of its time in fat-LTO links that use one core each (70-140 s per function, one function
# after another), and the other lane fills the idle core. The two lanes lock different build
# directories (target/aarch64-unknown-linux-gnu + target/release, target/debug), so neither waits
# for the other. sam build's lines are prefixed with `sam-build| `; both lanes must succeed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
make=${MAKE:-make}

# In its own process group, so that stopping it stops sam build and cargo under it.
setsid bash -c 'set -o pipefail; "$0" --no-print-directory sam-build 2>&1 | sed -u "s/^/sam-build| /"' \
  "$make" &
sam_pid=$!
stop_sam() { kill -- "-$sam_pid" 2>/dev/null || true; wait "$sam_pid" 2>/dev/null || true; }
trap 'stop_sam; exit 130' INT TERM

started=$(date +%s)
status=0
"$make" --no-print-directory lint .tools/bin/s3s-fs || status=$?
if (( status == 0 )); then
  cargo test --workspace --locked --no-run || status=$?
fi
if (( status == 0 )); then
  cargo build --locked -p media-dev || status=$?
fi
echo "lints and test builds took $(( $(date +%s) - started )) s"
if (( status != 0 )); then
  stop_sam
  exit "$status"
fi
wait "$sam_pid" || { echo "sam build failed" >&2; exit 1; }
