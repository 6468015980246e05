// One benchmark figure next to its physical floor, and the table/JSON printers.
//
// floor_ms = max(bytes ÷ measured bandwidth, FLOPs ÷ measured matmul peak): no
// implementation of the same work runs faster. ratio = floor_ms ÷ time_ms (1 is
// the hardware limit).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace tnl::bench {

struct Ceilings {
  std::string device;
  int sm_count = 0;
  double bandwidth_gbs = 0;  // device-to-device copy, bytes read + written per second
  double matmul_tflops = 0;  // bf16 8192³ cuBLAS GEMM, fp32 accumulation
};

struct Figure {
  std::string section;  // "kernel", "prefill", "decode"
  std::string name;     // what ran, with its shape
  double time_ms = 0;   // median
  double bytes = 0;     // the fewest bytes the work must move through device memory
  double flops = 0;     // the work's floating-point operations
  double tokens = 0;    // tokens produced or consumed per run (engine figures), else 0
  nlohmann::json extra = nlohmann::json::object();

  double floor_ms(const Ceilings& c) const;
  double ratio(const Ceilings& c) const { return floor_ms(c) / time_ms; }
};

void print_table(const Ceilings& c, const std::vector<Figure>& figures);
nlohmann::json to_json(const Ceilings& c, const std::vector<Figure>& figures);

}  // namespace tnl::bench
