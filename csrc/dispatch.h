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

}  // namespace fastbp
