#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, build, lint, then every lane
# (unit, node24, netns, interop, apiserver, vm). Ends with the line `N passed, N failed`.
# Choose lanes with arguments or KIPSEC_LANES=unit,netns. See scripts/run-lanes.mjs.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
t0=$SECONDS
bash scripts/setup.sh
echo "lint: eslint" >&2
lint=0; npx eslint --max-warnings=0 . || lint=$?
lanes=0; node scripts/run-lanes.mjs "$@" || lanes=$?
echo "total $((SECONDS - t0)) s" >&2
if [[ $lint != 0 ]]; then echo "lint: FAILED (eslint above); the run fails even though the lanes ran" >&2; fi
[[ $lint == 0 && $lanes == 0 ]]
