// Programmatic edges for a launch we do not make ourselves (cuBLASLt's), while a
// stream is being captured into a graph.
//
// Our own kernels enter a graph behind programmatic edges because they are
// launched with the Programmatic Dependent Launch attribute
// (kernels/cuda/dependent_launch.cuh); cuBLASLt launches its kernels the
// ordinary way, so each GEMM of a captured decode step waited for its
// predecessor to finish before it was even placed. Replacing the capture's
// current dependencies by programmatic edges to the same nodes makes the next
// node captured a dependent launch too — which is only correct for a kernel
// that waits (griddepcontrol.wait) before it reads what its predecessors write;
// the GEMM runner asks this only for kernels it has seen wait (gemm.h).
#pragma once

#include <cuda_runtime.h>

#include <vector>

namespace tnl {

// No effect unless `stream` is capturing and every current dependency is a
// kernel node (the only kind a programmatic edge may leave).
inline cudaError_t make_next_capture_edges_programmatic(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaGraphNode_t* deps = nullptr;
  const cudaGraphEdgeData* edges = nullptr;
  size_t n = 0;
  cudaError_t err = cudaStreamGetCaptureInfo(stream, &status, nullptr, nullptr, &deps, &edges, &n);
  if (err != cudaSuccess || status != cudaStreamCaptureStatusActive || n == 0) return err;
  std::vector<cudaGraphNode_t> nodes(deps, deps + n);  // the pointers are valid until the next call on the stream
  for (cudaGraphNode_t node : nodes) {
    cudaGraphNodeType type{};
    err = cudaGraphNodeGetType(node, &type);
    if (err != cudaSuccess || type != cudaGraphNodeTypeKernel) return err;
  }
  std::vector<cudaGraphEdgeData> programmatic(n);
  for (cudaGraphEdgeData& e : programmatic) {
    e = {};
    e.from_port = cudaGraphKernelNodePortProgrammatic;
    e.type = cudaGraphDependencyTypeProgrammatic;
  }
  return cudaStreamUpdateCaptureDependencies(stream, nodes.data(), programmatic.data(), n,
                                             cudaStreamSetCaptureDependencies);
}

}  // namespace tnl
