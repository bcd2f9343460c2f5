#!/usr/bin/env bash
# `sam build` with the pinned aws-sam-cli, cargo-lambda and zig from the venv, then checks that it
# produced the seven functions' `bootstrap` executables for Linux on arm64 (AArch64 ELF).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
started=$(date +%s)
sam build --template template.yaml
echo "sam build took $(( $(date +%s) - started )) s"

status=0
for fn in Presign Confirm Get Library Delete Process Cleanup; do
  f=".aws-sam/build/${fn}Function/bootstrap"
  if [[ ! -x $f ]]; then
    echo "missing or not executable: $f" >&2; status=1; continue
  fi
  # ELF magic, 64-bit, little-endian; e_machine (bytes 18-19) 0xB7 = AArch64.
  header=$(od -An -tx1 -N20 "$f" | tr -d ' \n')
  if [[ ${header:0:8} != 7f454c46 || ${header:8:2} != 02 || ${header:36:4} != b700 ]]; then
    echo "$f is not an arm64 ELF executable (header $header)" >&2; status=1; continue
  fi
  # Built to unwind (Cargo.toml's release profile), not abort: landing pads fill .gcc_except_table.
  hex=$(readelf -S -W "$f" | sed -n 's/.*\.gcc_except_table *PROGBITS *[0-9a-f]* [0-9a-f]* \([0-9a-f]*\) .*/\1/p')
  except=$(( 16#${hex:-0} ))
  if (( except < 65536 )); then
    echo "$f was built with panic = abort (.gcc_except_table: ${except:-none} bytes)" >&2; status=1; continue
  fi
  size=$(stat -c %s "$f")
  # The API functions' size budget (issue 12): 6 MB. What a function links is what its wiring in
  # shared/aws/src/wire.rs names; `cargo bloat --crates` on the x86_64 build shows where it goes.
  if [[ $fn != Process ]] && (( size > 6000000 )); then
    echo "$f is $size bytes, over the API functions' 6 MB budget" >&2; status=1; continue
  fi
  printf '%-45s %s bytes, arm64, unwinds\n' "$f" "$size"
done
exit $status
