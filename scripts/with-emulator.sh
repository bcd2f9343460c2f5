#!/usr/bin/env bash
# Runs a command against a fresh moto server (S3, DynamoDB, SQS) on a free 127.0.0.1 port, with the
# AWS SDK pointed at it and dummy credentials, and a clamd with the project's test signatures
# (scripts/clamd.sh) on another, named by CLAMAV_ADDRESS; both are stopped when the command ends.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/.local"
port=${EMULATOR_PORT:-$("$root/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
log="$root/.local/moto-$port.log"
# moto_server, with DynamoDB's writes serialized as DynamoDB's transactions are (see the script).
"$root/.venv/bin/python" "$root/scripts/moto-server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
clamd_port=$("$root/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
clamd_dir="$root/.local/clamd-$clamd_port"
"$root/scripts/clamd.sh" "$clamd_port" "$clamd_dir" >"$clamd_dir.out" 2>&1 &
clamd_pid=$!
trap 'kill "$pid" "$clamd_pid" 2>/dev/null || true; wait "$pid" "$clamd_pid" 2>/dev/null || true; rm -rf "$clamd_dir"' EXIT INT TERM

# Waits at most 30 s for <name> (process <pid>, log <log>) to accept connections on <port>.
wait_for() {
  local name=$1 port=$2 pid=$3 log=$4
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "$name died; see $log" >&2; exit 1; fi
    sleep 0.1
  done
  echo "$name did not start on port $port; see $log" >&2
  exit 1
}
wait_for moto_server "$port" "$pid" "$log"
# clamd loads its signatures in about a second.
wait_for clamd "$clamd_port" "$clamd_pid" "$clamd_dir.out"

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export CLAMAV_ADDRESS="127.0.0.1:$clamd_port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
"$@"
