#include "tools/cli/cli.h"

#include <iostream>

namespace a2a::cli {
int main(int, char**) {
  std::cout << "a2a\n";
  return 0;
}
}  // namespace a2a::cli
