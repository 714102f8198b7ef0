// Input checks the core performs itself (the addon checks types and lengths first; these catch
// anything that would make a kernel read out of bounds). Throw std::invalid_argument naming the
// argument.
#pragma once
#include "../model/config.h"
#include "policy.h"

namespace troupe {

void validate_packed(const PackedTokens& b, const ModelConfig& c, const char* what);
void validate_train_batch(const TrainBatch& b, const ModelConfig& c);
void validate_generate(const GenerateRequest& r, const ModelConfig& c);

}  // namespace troupe
