#!/usr/bin/env bash
# Copy the reference implementation's code (not its docs/videos) from a local git mirror into .ref/nds
# (git-ignored, carried to the GPU machine). The mirror comes from the session tool `fetch`
# (github:fraunhoferhhi/neural-deferred-shading). Nothing of it is committed here.
# Usage: bash benchmarks/gpu/get_reference.sh /work/.mirror/fraunhoferhhi+neural-deferred-shading/repo
set -euo pipefail
cd "$(dirname "$0")/../.."
mirror=${1:?path of the reference git directory}
rm -rf .ref/nds
mkdir -p .ref/nds
git --git-dir="$mirror" archive HEAD reconstruct.py nds LICENSE README.md | tar -x -C .ref/nds
git --git-dir="$mirror" rev-parse HEAD > .ref/nds/COMMIT
rm -rf .ref/nds/nds/viewer
du -sh .ref/nds
