#pragma once
// A transformers image processor's preprocessor_config.json (CLIPImageProcessor, or the older
// CLIPFeatureExtractor) read into the torchvision-exact preprocessing of media/image_preprocess.h.
#include <string>

#include "media/image_preprocess.h"
#include "weights/config_reader.h"

namespace a2a {

// Reads size (an int or {"shortest_edge": n}), crop_size (an int or a square {"height", "width"}),
// resample (2 = bilinear, 3 = bicubic, PIL's numbering), image_mean, image_std, and do_resize,
// do_center_crop, do_normalize; absent keys keep `defaults`. Anything the preprocessing cannot do exactly
// (another resample filter, a non-square crop, a fixed {"height", "width"} resize, a rescale factor other
// than 1/255) is a "bad_config" input error that names the file and the key.
ImagePreprocessOptions image_processor_options(const ConfigReader& config, ImagePreprocessOptions defaults);

// The preprocessor_config.json that belongs to a model: in its own folder, else in the pipeline's
// feature_extractor/ or image_processor/ folder; "" when there is none.
std::string find_preprocessor_config(const std::string& model_folder, const std::string& pipeline_root);

}  // namespace a2a
