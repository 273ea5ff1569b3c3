#include "tools/cli/cli.h"

int main(int argc, char** argv) { return a2a::cli::main(argc, argv); }
