#include <iostream>
int main() { std::cout << "bench\n"; }
