// Which micro-kernel set runs: detected once from the CPU, or forced by
// FASTBP_CPU_CAPABILITY=ref|avx2|avx512 (asking for a path the CPU lacks is an error).
#pragma once
#include <string>
#include <vector>

namespace fastbp {

enum class Capability { ref = 0, avx2 = 1, avx512 = 2 };

const char* capability_name(Capability c);
bool cpu_supports(Capability c);
std::vector<std::string> supported_capabilities();

// Reads the environment and fixes the active path; throws std::invalid_argument with a message
// naming FASTBP_CPU_CAPABILITY when the request is unknown or unsupported. Idempotent.
void init_dispatch();
Capability active_capability();
// Switches the active path (tests and benchmarks); the same checks as the environment variable.
void set_capability(const std::string& name);

// Whether the vector ALU operations that reading a GEMM's operands in place adds to its loop
// issue to the ports of the FMAs, as on Intel's cores (ports 0 and 5): a merge-masked load for
// each extra piece of a vector of pixels, and moves of addresses that the loop keeps in vector
// registers. Where they do, more is packed instead of read in place: a convolution's pixels
// when its vectors cross output rows (conv.cpp), a linear layer's weights from a smaller batch
// on (linear.cpp). Detected from the CPU's vendor, or forced by set_alu_on_fma_ports (tests).
// A convolution's results differ between the two ways in the last bits; a linear layer's do not.
bool alu_on_fma_ports();
void set_alu_on_fma_ports(bool shared);

// The version of a kernel for the active path, among one per ISA (pointers to functions or to
// tables). The x86 versions exist only in x86 builds: FASTBP_X86(f) is &f there, else nullptr,
// and the portable version runs.
#ifdef FASTBP_X86_KERNELS
#define FASTBP_X86(f) (&(f))
#else
#define FASTBP_X86(f) nullptr
#endif
template <typename P>
struct Same {
  using type = P;
};
template <typename P>
P for_active_path(P ref, typename Same<P>::type avx2, typename Same<P>::type avx512) {
  const Capability c = active_capability();
  if (c == Capability::avx512 && avx512) return avx512;
  if (c == Capability::avx2 && avx2) return avx2;
  return ref;
}

}  // namespace fastbp
