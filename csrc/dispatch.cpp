#include "dispatch.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace fastbp {
namespace {

std::atomic<int> g_active{-1};
std::atomic<int> g_alu_on_fma{-1};  // -1: not yet detected

Capability best_supported() {
  if (cpu_supports(Capability::avx512)) return Capability::avx512;
  if (cpu_supports(Capability::avx2)) return Capability::avx2;
  return Capability::ref;
}

Capability parse(const std::string& name, const char* source) {
  for (Capability c : {Capability::ref, Capability::avx2, Capability::avx512}) {
    if (name == capability_name(c)) {
      if (!cpu_supports(c))
        throw std::invalid_argument(std::string(source) + "='" + name +
                                    "' asks for a path this CPU does not support; supported: " +
                                    [] {
                                      std::string s;
                                      for (auto& n : supported_capabilities())
                                        s += (s.empty() ? "" : ", ") + n;
                                      return s;
                                    }());
      return c;
    }
  }
  throw std::invalid_argument(std::string(source) + "='" + name +
                              "' is not one of ref, avx2, avx512");
}

}  // namespace

const char* capability_name(Capability c) {
  switch (c) {
    case Capability::avx512: return "avx512";
    case Capability::avx2: return "avx2";
    default: return "ref";
  }
}

bool cpu_supports(Capability c) {
  switch (c) {
    case Capability::ref: return true;
#if defined(FASTBP_X86_KERNELS) && (defined(__x86_64__) || defined(__i386__))
    case Capability::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Capability::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma");
#endif
    default: return false;
  }
}

std::vector<std::string> supported_capabilities() {
  std::vector<std::string> out;
  for (Capability c : {Capability::ref, Capability::avx2, Capability::avx512})
    if (cpu_supports(c)) out.emplace_back(capability_name(c));
  return out;
}

void init_dispatch() {
  if (g_active.load() >= 0) return;
  const char* env = std::getenv("FASTBP_CPU_CAPABILITY");
  Capability c = (env && *env) ? parse(env, "FASTBP_CPU_CAPABILITY") : best_supported();
  g_active.store(static_cast<int>(c));
}

Capability active_capability() {
  if (g_active.load() < 0) init_dispatch();
  return static_cast<Capability>(g_active.load());
}

bool alu_on_fma_ports() {
  if (g_alu_on_fma.load() < 0) {
#if defined(__x86_64__) || defined(__i386__)
    g_alu_on_fma.store(__builtin_cpu_is("intel") ? 1 : 0);
#else
    g_alu_on_fma.store(0);
#endif
  }
  return g_alu_on_fma.load() == 1;
}

void set_alu_on_fma_ports(bool shared) { g_alu_on_fma.store(shared ? 1 : 0); }

void set_capability(const std::string& name) {
  g_active.store(static_cast<int>(parse(name, "capability")));
}

}  // namespace fastbp
