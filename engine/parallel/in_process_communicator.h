// The in-process communicator: tensor-parallel ranks as threads of one process,
// buffers in host memory (the CPU backend's ranks). Reductions are deterministic:
// each element is summed by one rank, over the ranks in order, and written to all.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "engine/parallel/communicator.h"

namespace tnl {

// One communicator per rank of a group of `size`; a rank waiting longer than
// `timeout` at a collective aborts the group.
std::vector<std::unique_ptr<Communicator>> make_in_process_communicators(
    int32_t size, std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace tnl
