// troupe_native_bench: benchmarks of the C++ core without Node (usable on a GPU machine that has
// no Node). Subcommands: `gemm` (GEMM shapes vs measured peak), `model` (train step and sampling
// throughput per preset). Each prints a human table and one JSON line last.
#include <cstdio>
#include <cstring>
#include <string>

int gemm_bench_main(int argc, char** argv);
int model_bench_main(int argc, char** argv);
int layers_bench_main(int argc, char** argv);

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "gemm") return gemm_bench_main(argc - 1, argv + 1);
  if (cmd == "model") return model_bench_main(argc - 1, argv + 1);
  if (cmd == "layers") return layers_bench_main(argc - 1, argv + 1);
  std::fprintf(stderr, "usage: troupe_native_bench gemm|model|layers [options]\n"
                       "  model --presets tiny,small,medium --threads N --repeats K [--only train|sample]\n");
  return 2;
}
