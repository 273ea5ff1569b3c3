#pragma once
// A registry of four stage types with every kind of parameter and port, so that the fuzzed configs
// reach every validation pass without loading a model.
#include "pipeline/registry.h"

namespace a2a::fuzz {

const StageRegistry& fake_stage_registry();

// Small valid configs over those stages (the seeds of the config harnesses).
std::vector<std::string> fake_stage_configs();

}  // namespace a2a::fuzz
