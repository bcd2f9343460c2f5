# Sourced by the scripts that test the local stack: starts `media-dev serve` (already built) on a
# free loopback port with its own bucket and table on the emulator that scripts/with-emulator.sh
# started, waits (at most 30 s) for its health check, and stops it when the script exits.
# Sets: LOCAL_API_URL, LOCAL_API_PORT, LOCAL_JWT_SECRET (exported), LOCAL_API_LOG.
: "${AWS_ENDPOINT_URL:?run me through scripts/with-emulator.sh}"
LOCAL_API_PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOCAL_API_URL="http://127.0.0.1:$LOCAL_API_PORT"
export LOCAL_JWT_SECRET="local-$RANDOM$RANDOM"
# LOCAL_API_ORIGINS: further origins (comma-separated) that CORS allows besides the API's own;
# unset, any origin is allowed, as in `make dev`.
if [ -n "${LOCAL_API_ORIGINS:-}" ]; then
  export CORS_ALLOWED_ORIGINS="$LOCAL_API_URL,$LOCAL_API_ORIGINS"
fi
mkdir -p .local
LOCAL_API_LOG=".local/$1-serve-$LOCAL_API_PORT.log"
PORT=$LOCAL_API_PORT CLEANUP_INTERVAL_SECONDS=0 \
  MEDIA_BUCKET="$1-$LOCAL_API_PORT" MEDIA_TABLE="$1-$LOCAL_API_PORT" \
  target/debug/media-dev serve >"$LOCAL_API_LOG" 2>&1 &
local_api_pid=$!
trap 'kill "$local_api_pid" 2>/dev/null || true; wait "$local_api_pid" 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 150); do
  curl -sf "$LOCAL_API_URL/health" >/dev/null && break
  kill -0 "$local_api_pid" 2>/dev/null || { echo "media-dev serve died; see $LOCAL_API_LOG" >&2; exit 1; }
  sleep 0.2
done
curl -sf "$LOCAL_API_URL/health" >/dev/null || { echo "media-dev serve did not come up; see $LOCAL_API_LOG" >&2; exit 1; }
