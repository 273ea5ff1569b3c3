#pragma once
// Small stages registered at run time (the user-code registration path) for executor tests.
#include <map>
#include <mutex>
#include <string>

namespace a2a::test {

// Registers t_source, t_add, t_gate, t_slow, t_text, t_image_sink once.
void register_test_stages();

// How many times each stage id actually ran (cache hits and skips do not count).
int run_count(const std::string& stage_id);
void reset_run_counts();

}  // namespace a2a::test
