#!/usr/bin/env bash
# vm-run.sh FILE... — run node:test files (TypeScript through tsx, or compiled .js) inside one
# kernel-lane VM boot. For ad-hoc use: `bash e2e/vm-run.sh e2e/vm/xfrm-sa.test.ts`.
# The lane runner (scripts/run-lanes.mjs) uses the same inside script with its reporters.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# RSA-4096 test keys on the host (seconds) rather than in the VM (minutes under TCG); the VM sees
# the cache (e2e/lib/rsa-chain.ts). Not fatal: a test missing its keys generates them itself.
node --import tsx "$here/lib/rsa-chain.ts" >&2 || true
exec "$here/kernel-vm.sh" "$here/vm-inside.sh" "$@"
