// The CPU implementation of the op interface: host memory, kernels from kernels.h.
#pragma once
#include "../ops/backend.h"

namespace troupe {

Backend* cpu_backend();  // process-wide singleton (stateless apart from thread pools)

}  // namespace troupe
