#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, then runs the cluster demo
# (scripts/demo-cluster.ts: apiserver, operator, three nodes with pods, ESP on the wire).
#   bash scripts/demo.sh                the cluster
#   bash scripts/demo.sh --standalone   the standalone agent next to strongSwan (scripts/demo-standalone.ts)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
bash scripts/setup.sh >&2
if [[ ${1:-} == --standalone ]]; then shift; exec node --import tsx scripts/demo-standalone.ts "$@"; fi
exec node --import tsx scripts/demo-cluster.ts "$@"
