#!/usr/bin/env bash
# The browser tests (tests/browser: the demo page, stock Uppy 6 and 5, whole and in parts, a
# FormData POST) in Debian's headless Chromium, against media-dev serve over the emulator that
# scripts/with-emulator.sh started. Screenshots land in target/browser-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
# The client pages get their own origin, the only other one CORS allows: the API and the bucket
# refuse every other origin, as a deployed stack with CorsAllowedOrigins set does.
STATIC_PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export STATIC_PORT
LOCAL_API_ORIGINS="http://127.0.0.1:$STATIC_PORT"
# Documents up to 64 MiB: the uploads in parts send 60 MB files (text) and one just over this.
export MAX_DOCUMENT_SIZE=67108864
source scripts/local-api.sh browser
export MEDIA_API_URL=$LOCAL_API_URL
export MEDIA_TEST_BUCKET="browser-$LOCAL_API_PORT"
cd tests/browser
timeout 900 node --test --test-concurrency=1 --test-timeout=300000 --test-reporter=spec \
  demo.test.mjs uppy.test.mjs parts.test.mjs post.test.mjs cors.test.mjs
