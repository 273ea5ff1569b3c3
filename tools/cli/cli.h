#pragma once

namespace a2a::cli {
// The `a2a` command line. Returns the process exit code (see README: 0, 1, 2, 3, 130).
int main(int argc, char** argv);
}  // namespace a2a::cli
