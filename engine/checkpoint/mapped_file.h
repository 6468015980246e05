// MappedFile: a read-only memory mapping of a whole file, unmapped on
// destruction. Checkpoint tensors point into these mappings, so a Checkpoint
// owns its MappedFiles for as long as any TensorView is in use.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "engine/status.h"

namespace tnl {

class MappedFile {
 public:
  // Maps `path` read-only (MAP_PRIVATE, PROT_READ). An empty file maps to an
  // empty span. Errors name the file.
  static Expected<std::unique_ptr<MappedFile>> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile(std::filesystem::path path, const std::byte* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;  // nullptr iff size_ == 0
  size_t size_ = 0;                  // bytes
};

}  // namespace tnl
