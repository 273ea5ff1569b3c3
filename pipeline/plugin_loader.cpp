#include "pipeline/plugin_loader.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <set>

#include "base/error.h"
#include "pipeline/registry.h"

namespace a2a {

namespace fs = std::filesystem;

namespace {

std::mutex& plugin_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::string>& plugin_list() {
  static std::vector<std::string> loaded;
  return loaded;
}

[[noreturn]] void fail(const std::string& code, const std::string& message) {
  throw Error(ErrorKind::Config, code, message);
}

}  // namespace

namespace {

// A library opened with the registry's stage types noted first, so that a failed check can undo
// whatever its static registrars added.
struct OpenedPlugin {
  std::string path;
  void* handle = nullptr;
  std::set<std::string> types_before;

  void roll_back() const {
    auto& registry = StageRegistry::global();
    for (const auto& type : registry.types())
      if (!types_before.count(type)) registry.remove(type);
    dlclose(handle);
  }
};

OpenedPlugin open_plugin(const std::string& path, const std::string& canonical) {
  auto& registry = StageRegistry::global();
  registry.take_registration_errors();  // start clean: report only this library's problems
  const auto before = registry.types();
  OpenedPlugin plugin{path, nullptr, std::set<std::string>(before.begin(), before.end())};
  dlerror();
  plugin.handle = dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!plugin.handle) {
    const char* why = dlerror();
    fail("plugin_load_failed", "cannot load plugin '" + path + "': " + (why ? why : "unknown dlopen error"));
  }
  return plugin;
}

void check_abi(const OpenedPlugin& plugin) {
  const std::string& path = plugin.path;
  dlerror();
  void* symbol = dlsym(plugin.handle, "a2a_plugin_abi_version");
  if (!symbol) {
    plugin.roll_back();
    fail("plugin_symbol_missing",
         "'" + path +
             "' is not an any2any plugin: it does not export "
             "a2a_plugin_abi_version() (add A2A_PLUGIN_EXPORT_ABI_VERSION() to one of its sources)");
  }
  const int version = reinterpret_cast<int (*)()>(symbol)();
  if (version != kPluginAbiVersion) {
    plugin.roll_back();
    fail("plugin_abi_mismatch", "plugin '" + path + "' was built for plugin ABI version " + std::to_string(version) +
                                    ", this build of any2any has version " + std::to_string(kPluginAbiVersion) +
                                    ": rebuild the plugin");
  }
}

void check_registrations(const OpenedPlugin& plugin, const std::vector<std::string>& errors) {
  if (errors.empty()) return;
  plugin.roll_back();
  std::string joined;
  bool duplicate = false;
  for (const auto& e : errors) {
    joined += (joined.empty() ? "" : "; ") + e;
    duplicate = duplicate || e.find("already registered") != std::string::npos;
  }
  fail(duplicate ? "duplicate_stage_type" : "plugin_registration_failed",
       "plugin '" + plugin.path + "' could not register its stages: " + joined);
}

}  // namespace

void load_plugin(const std::string& path) {
  std::lock_guard<std::mutex> lock(plugin_mutex());
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("plugin_not_found", "plugin library '" + path + "' does not exist");
  if (!fs::is_regular_file(path, ec)) fail("plugin_not_found", "plugin '" + path + "' is not a file");
  const std::string canonical = fs::canonical(path, ec).string();
  auto& loaded = plugin_list();
  if (std::find(loaded.begin(), loaded.end(), canonical) != loaded.end()) return;
  const OpenedPlugin plugin = open_plugin(path, canonical);
  const auto errors = StageRegistry::global().take_registration_errors();
  check_abi(plugin);
  check_registrations(plugin, errors);
  loaded.push_back(canonical);
}

std::vector<std::string> loaded_plugins() {
  std::lock_guard<std::mutex> lock(plugin_mutex());
  return plugin_list();
}

}  // namespace a2a
