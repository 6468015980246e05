// Paths the tests need: the source tree (shipped fixtures) and the build tree (tools).
#pragma once

#include <filesystem>

namespace tnl::test {

inline std::filesystem::path source_dir() { return TNL_SOURCE_DIR; }
inline std::filesystem::path binary_dir() { return TNL_BINARY_DIR; }

}  // namespace tnl::test
