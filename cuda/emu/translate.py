#!/usr/bin/env python3
"""Rewrites CUDA sources into C++ the CPU stand-in (cuda/emu/include) compiles:
  kernel<<<grid, block[, smem[, stream]]>>>(args)  ->  ::emu::launch(kernel, grid, block[, ...])(args)
  extern __shared__ T name[];                       ->  T* name = ::emu::dynamic_smem<T>();
Usage: translate.py SRC_DIR OUT_DIR   (every SRC_DIR/*.cu and *.cuh becomes OUT_DIR/<name>)."""
import pathlib
import re
import sys

LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;()]*>)?)<<<(.*?)>>>", re.S)
EXTERN_SMEM = re.compile(r"extern\s+__shared__\s+(\w+)\s+(\w+)\s*\[\s*\]\s*;")


def translate(text: str) -> str:
    text = EXTERN_SMEM.sub(r"\1* \2 = ::emu::dynamic_smem<\1>();", text)
    return LAUNCH.sub(lambda m: f"::emu::launch({m.group(1)}, {m.group(2)})", text)


def main() -> None:
    src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(list(src.glob("*.cu")) + list(src.glob("*.cuh")) + list(src.glob("*.h"))):
        target = out / (f.name[:-3] + ".cpp" if f.suffix == ".cu" else f.name)
        text = translate(f.read_text())
        if not target.exists() or target.read_text() != text:  # keep mtimes for incremental builds
            target.write_text(text)


if __name__ == "__main__":
    main()
