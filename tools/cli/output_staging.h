#pragma once
// The outputs of one run are written into a private staging folder inside the output folder and moved
// into place only when every one of them has been written. A failure leaves none of them, an interrupted
// run leaves no temporary file, and runs sharing an output folder never see each other's partial files:
// each published file appears by one rename.
#include <string>
#include <vector>

namespace a2a::cli {

class OutputStaging {
 public:
  // Creates OUT/.a2a-staging-<pid>-<n>/ and registers it for removal on a fatal signal.
  explicit OutputStaging(std::string out_dir);
  // Removes the staging folder and whatever is left in it.
  ~OutputStaging();
  OutputStaging(const OutputStaging&) = delete;
  OutputStaging& operator=(const OutputStaging&) = delete;

  const std::string& folder() const { return folder_; }
  // Where an output saved as `save` (relative to the output folder) is written first.
  std::string staged_path(const std::string& save) const;
  // Moves each written path (a file or a frame folder under the staging folder) to the same place under
  // the output folder; returns the published paths. A folder on the way that is a symbolic link is
  // refused (output_path_escapes) before anything moves.
  std::vector<std::string> publish(const std::vector<std::string>& written);

 private:
  std::string out_dir_;
  std::string folder_;
};

// Removes the registered staging folder with system calls only (no allocation), so a signal handler may
// call it before _exit.
void remove_staging_from_signal_handler();

// OUT_DIR/SAVE, refused when a folder on the way is a symbolic link.
std::string checked_output_path(const std::string& out_dir, const std::string& save);

}  // namespace a2a::cli
