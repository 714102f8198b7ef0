// Checkpoints in Hugging Face's layout: config.json + model.safetensors (F32, HF tensor names;
// BF16/F16 and sharded checkpoints load too), plus optimizer.safetensors with the AdamW moments
// and step count. Each file is replaced atomically; the trainer makes a whole checkpoint
// directory atomic by writing it under a temporary name and renaming it.
#pragma once
#include <memory>
#include <string>

#include "../model/qwen3.h"

namespace troupe {

void save_checkpoint(Qwen3Model& m, const std::string& dir, bool with_optimizer);
std::unique_ptr<Qwen3Model> load_checkpoint(const std::string& dir, Backend* be);

}  // namespace troupe
