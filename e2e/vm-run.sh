#!/usr/bin/env bash
# vm-run.sh FILE... — run node:test files (TypeScript through tsx, or compiled .js) inside one
# kernel-lane VM boot. For ad-hoc use: `bash e2e/vm-run.sh e2e/vm/xfrm-sa.test.ts`.
# The lane runner (scripts/run-lanes.mjs) uses the same inside script with its reporters.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
exec "$here/kernel-vm.sh" "$here/vm-inside.sh" "$@"
