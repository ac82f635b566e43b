#!/usr/bin/env bash
# ci.total_s for benchmarks/perf.py: .ci/run on a clean clone of HEAD, with ../shared beside it
# as CI has it; writes benchmarks/ci_time.json. Run from the project root (20-30 minutes).
set -euo pipefail
root="$(pwd)"
clone="$(dirname "$root")/ci-time-clone"
rm -rf "$clone"
git clone -q "$root" "$clone"
commit="$(git -C "$clone" rev-parse --short HEAD)"  # what was tested, whatever HEAD is by the end
start=$(date +%s)
(cd "$clone" && CI=true bash .ci/run) > "$root/benchmarks/ci_time.log" 2>&1
seconds=$(( $(date +%s) - start ))
printf '{"total_s": %d, "commit": "%s", "date_utc": "%s"}\n' "$seconds" "$commit" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > benchmarks/ci_time.json
rm -rf "$clone"
cat benchmarks/ci_time.json
