// pragmas/embedded.h — private: the table generated from pragmas/*.sql by embed.cmake (presets_embedded.cpp).
#pragma once

#include <cstddef>
#include <string_view>

namespace spawnd::pragmas::detail {

struct EmbeddedPreset {
  std::string_view name;  // "default", "durable", "baseline"
  std::string_view text;  // the whole .sql file
};

extern const EmbeddedPreset kEmbeddedPresets[];
extern const std::string_view kEmbeddedPresetNames[];
extern const std::size_t kEmbeddedPresetCount;

}  // namespace spawnd::pragmas::detail
