#pragma once
// Loading plugin libraries: shared libraries whose stages register themselves exactly like built-in
// ones (A2A_REGISTER_STAGE). A plugin must also export
//
//   A2A_PLUGIN_EXPORT_ABI_VERSION()    // defines extern "C" int a2a_plugin_abi_version()
//
// which returns the kPluginAbiVersion it was built against; a library built against another version
// of the stage contract is refused before any of its stages can be used.
//
// A plugin is native code running inside this process, with the process's rights: load only libraries
// from a trusted source.
#include <string>
#include <vector>

namespace a2a {

// Bumped whenever the Stage / StageInfo / Value layout changes incompatibly.
constexpr int kPluginAbiVersion = 1;

// Loads the library and registers its stages. Loading the same file again does nothing.
// Throws a2a::Error (kind Config) with code:
//   plugin_not_found       the file does not exist
//   plugin_load_failed     dlopen refused it (dlerror's message is included)
//   plugin_symbol_missing  no exported a2a_plugin_abi_version()
//   plugin_abi_mismatch    built against another kPluginAbiVersion
//   duplicate_stage_type   one of its stage types is already registered
//   plugin_registration_failed  another registration error
// On error the library's registrations are undone and it is unloaded.
void load_plugin(const std::string& path);

// The canonical paths of the plugins loaded so far.
std::vector<std::string> loaded_plugins();

}  // namespace a2a

#define A2A_PLUGIN_EXPORT_ABI_VERSION() \
  extern "C" __attribute__((visibility("default"))) int a2a_plugin_abi_version() { return ::a2a::kPluginAbiVersion; }
