#!/usr/bin/env bash
# Quick start: installs what omnifs needs, builds it, and brings up a local
# 3-node cluster with its mounts.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh release
echo "omnifs-up: built build/release. The daemon (omnifsd) is not written yet:"
echo "omnifs-up: this command will start a local 3-node cluster once it is."
