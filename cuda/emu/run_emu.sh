#!/usr/bin/env bash
# Builds the CUDA backend's kernels for the CPU stand-in and runs the cross-backend op harness
# against the CPU backend, with AddressSanitizer: no GPU needed. Arguments go to the harness
# (name filters; default: the cases small enough to emulate in a few minutes).
#   cuda/emu/run_emu.sh                 # the default small set
#   cuda/emu/run_emu.sh attention_fwd   # one family
# EMU_BUILD sets the build folder (default /tmp/troupe-emu), EMU_JOBS the parallel jobs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${EMU_BUILD:-/tmp/troupe-emu}
JOBS=${EMU_JOBS:-2}
python3 "$ROOT/cuda/emu/translate.py" "$ROOT/cuda" "$OUT/src"
# The CPU core as the device build makes it (no -march=native, so no FMA contraction).
cmake -S "$ROOT" -B "$OUT/core" -DTROUPE_CUDA=OFF -DTROUPE_NATIVE_ARCH=OFF -DTROUPE_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$OUT/core" --target troupe_core -j "$JOBS" >"$OUT/core-build.log" 2>&1 || { tail -30 "$OUT/core-build.log"; exit 1; }
# TROUPE_HAVE_CUBLAS: the GEMM modes go through the stand-in's cublasGemmEx (cublas_v2.h).
FLAGS="-std=c++17 -O1 -g -fsanitize=address -fno-omit-frame-pointer -ffp-contract=off -w -DTROUPE_HAVE_CUBLAS=1"
INC="-I$ROOT/cuda/emu/include -I$OUT/src -I$ROOT/native -I$ROOT/cuda"
mkdir -p "$OUT/obj"
# Rebuild everything when the flags change; otherwise only sources newer than their objects.
if [ "$(cat "$OUT/obj/flags" 2>/dev/null)" != "$FLAGS $INC" ]; then
  rm -f "$OUT"/obj/*.o
  echo "$FLAGS $INC" >"$OUT/obj/flags"
fi
pids=()
NEWEST_HEADER=$(ls -t "$OUT"/src/*.cuh "$OUT"/src/*.h "$ROOT"/cuda/emu/include/*.h \
  "$ROOT"/cuda/tests/*.h "$ROOT"/native/ops/backend.h | head -1)
for f in "$OUT"/src/*.cpp "$ROOT"/cuda/emu/emu_runtime.cpp "$ROOT"/cuda/tests/*.cpp; do
  o="$OUT/obj/$(basename "${f%.*}").o"
  if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ "$NEWEST_HEADER" -nt "$o" ]; then
    g++ $FLAGS $INC -c "$f" -o "$o" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
g++ $FLAGS "$OUT"/obj/*.o "$OUT/core/libtroupe_core.a" -lpthread -o "$OUT/troupe_cuda_tests_emu"
if [ $# -eq 0 ]; then
  set -- odd/ beta0/NN k0 /17 misaligned /5 9x33 7x100 3x13000 /5/4-2 /64/6-2 3x5 hd32 hd80 \
    _small small_g4 g16 33x1000 7x1001 64x1000 2x20000 5x7 adamw/1001
fi
# Fibers switch stacks: tell ASan not to treat that as stack corruption. (--no-determinism: the
# emulator runs blocks in a fixed order, so a second run proves nothing.)
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=0:detect_leaks=0} \
  "$OUT/troupe_cuda_tests_emu" --no-determinism "$@"
