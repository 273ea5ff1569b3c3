#include "nn/safetensors.h"
#include "test_support.h"

TEST_CASE("safetensors reads a fixture", "[safetensors]") {
  A2A_REQUIRE_FIXTURE("clip_text_model/model.safetensors");
  auto file = a2a::SafeTensorsFile::open(a2a::test::fixture_path("clip_text_model/model.safetensors"));
  REQUIRE(!file->records().empty());
  auto t = file->tensor(file->records().front().name);
  CHECK(t.defined());
}
