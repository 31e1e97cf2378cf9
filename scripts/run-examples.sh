#!/usr/bin/env bash
# Run every example in examples/ (they are the code samples of README and docs/), so that
# samples never rot. An example that serves forever says so with a `// ci: serves` line and is
# started, checked to come up, and stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
failed=0
for f in examples/*.ts; do
  if grep -q '^// ci: serves' "$f"; then
    echo "== $f (serves: started for 5 s)"
    PORT=0 timeout 5 npx tsx "$f" > /tmp/example-out.txt 2>&1 || true
    if ! grep -qi 'http://' /tmp/example-out.txt; then cat /tmp/example-out.txt; echo "FAILED: $f did not print its URL"; failed=1; fi
    continue
  fi
  echo "== $f"
  if ! timeout 120 npx tsx "$f" > /tmp/example-out.txt 2>&1; then
    cat /tmp/example-out.txt
    echo "FAILED: $f"
    failed=1
  fi
done
exit $failed
