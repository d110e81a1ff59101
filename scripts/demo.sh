#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, then runs scripts/demo.ts.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
bash scripts/setup.sh >&2
exec node --import tsx scripts/demo.ts "$@"
