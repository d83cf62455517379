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

// Whether a GEMM whose columns are pixels packs them instead of reading them in place, when
// its vectors of columns cross the ends of runs (output rows) and so load in several masked
// pieces. Each extra piece is merged into the vector by an ALU operation; on Intel's cores it
// issues to the ports of the FMAs (0 and 5), so merging for every sliver of A costs more than
// packing the columns once. Detected from the CPU's vendor (on Intel's: yes), or forced by
// set_pack_crossing_columns (tests). The two ways differ in the last bits of the results.
bool pack_crossing_columns();
void set_pack_crossing_columns(bool pack);

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
