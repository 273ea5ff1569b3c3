// Where this checkout and its build folder are: the one test file compiled with the paths.
#include "test_support.h"

namespace a2a::test {

const char* source_dir() { return A2A_SOURCE_PATH; }
const char* binary_dir() { return A2A_BINARY_PATH; }

}  // namespace a2a::test
