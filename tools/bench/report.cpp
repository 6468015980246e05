#include "tools/bench/report.h"

#include <algorithm>
#include <cstdio>

namespace tnl::bench {

double Figure::floor_ms(const Ceilings& c) const {
  const double memory_ms = bytes / (c.bandwidth_gbs * 1e9) * 1e3;
  const double compute_ms = flops / (c.matmul_tflops * 1e12) * 1e3;
  return std::max(memory_ms, compute_ms);
}

void print_table(const Ceilings& c, const std::vector<Figure>& figures) {
  std::printf("\n%s, %d SMs: copy %.0f GB/s, bf16 matmul %.0f TFLOP/s (measured)\n", c.device.c_str(), c.sm_count,
              c.bandwidth_gbs, c.matmul_tflops);
  std::printf("%-8s %-44s %10s %9s %9s %10s %10s %7s %s\n", "section", "what", "time ms", "GB/s", "TFLOP/s",
              "floor ms", "tok/s", "ratio", "bound");
  for (const Figure& f : figures) {
    const double s = f.time_ms / 1e3;
    const bool memory = f.bytes / (c.bandwidth_gbs * 1e9) >= f.flops / (c.matmul_tflops * 1e12);
    char tokens[32] = "-";
    if (f.tokens > 0) std::snprintf(tokens, sizeof tokens, "%.0f", f.tokens / s);
    if (f.bytes == 0 && f.flops == 0) {  // no floor: host-call figures, copies across PCIe
      std::printf("%-8s %-44s %10.4f %9s %9s %10s %10s %7s %s\n", f.section.c_str(), f.name.c_str(), f.time_ms, "-", "-",
                  "-", tokens, "-", "host");
      continue;
    }
    std::printf("%-8s %-44s %10.4f %9.1f %9.1f %10.4f %10s %6.0f%% %s\n", f.section.c_str(), f.name.c_str(), f.time_ms,
                f.bytes / s / 1e9, f.flops / s / 1e12, f.floor_ms(c), tokens, 100.0 * f.ratio(c),
                memory ? "memory" : "compute");
  }
}

nlohmann::json to_json(const Ceilings& c, const std::vector<Figure>& figures) {
  nlohmann::json j;
  j["device"] = c.device;
  j["sm_count"] = c.sm_count;
  j["ceilings"] = {{"bandwidth_gbs", c.bandwidth_gbs}, {"matmul_tflops", c.matmul_tflops}};
  j["figures"] = nlohmann::json::array();
  for (const Figure& f : figures) {
    const double s = f.time_ms / 1e3;
    nlohmann::json r = {{"section", f.section}, {"name", f.name},      {"time_ms", f.time_ms},
                        {"bytes", f.bytes},     {"flops", f.flops},    {"achieved_gbs", f.bytes / s / 1e9},
                        {"achieved_tflops", f.flops / s / 1e12},       {"floor_ms", f.floor_ms(c)},
                        {"ratio", f.ratio(c)}};
    if (f.tokens > 0) {
      r["tokens_per_s"] = f.tokens / s;
      r["floor_tokens_per_s"] = f.tokens / (f.floor_ms(c) / 1e3);
    }
    for (auto it = f.extra.begin(); it != f.extra.end(); ++it) r[it.key()] = it.value();
    j["figures"].push_back(r);
  }
  return j;
}

}  // namespace tnl::bench
