#!/usr/bin/env bash
# Everything the CUDA backend needs checked on a GPU machine, in one command from the repo root:
# build for the local GPU, run the op table against the CPU backend (--perf also times every
# case), then compute-sanitizer memcheck and racecheck over a fast subset.
#   bash cuda/tests/run_device.sh            # logs under $OUT (or /tmp/troupe-device)
# Prints failures, the perf table and the sanitizer summaries; exit status non-zero on failure.
set -uo pipefail
LOG=${OUT:-/tmp/troupe-device}
mkdir -p "$LOG"
ARCH=${CUDA_ARCH:-90}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
cmake -S . -B build-gpu -DTROUPE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
  -DTROUPE_NATIVE_ARCH=OFF -DCMAKE_BUILD_TYPE=Release >"$LOG/cmake.log" 2>&1 ||
  { tail -40 "$LOG/cmake.log"; exit 1; }
grep "troupe:" "$LOG/cmake.log"
cmake --build build-gpu -j"$(nproc)" --target troupe_cuda_tests >"$LOG/build.log" 2>&1 ||
  { grep -E "error|Error" "$LOG/build.log" | head -40; exit 1; }
status=0
./build-gpu/troupe_cuda_tests --perf "$@" >"$LOG/tests.log" 2>&1 || status=1
grep -v "^PASS" "$LOG/tests.log"
SUBSET="odd/NN k0 /17 misaligned /5 9x33 7x100 /5/4-2 3x5 hd32 _small small_g4 g16 33x1000 7x1001 2x20000 ties_k7 5x7 adamw/1001"
for tool in memcheck racecheck; do
  # shellcheck disable=SC2086
  compute-sanitizer --tool "$tool" --error-exitcode 3 ./build-gpu/troupe_cuda_tests $SUBSET \
    >"$LOG/$tool.log" 2>&1 || status=1
  echo "$tool: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$LOG/$tool.log" | tail -1) / $(tail -1 "$LOG/$tool.log")"
done
exit $status
