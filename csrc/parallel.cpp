#include "parallel.h"

#include <atomic>
#include <stdexcept>

namespace fastbp {
namespace {
int default_threads() {
#ifdef _OPENMP
  return omp_get_max_threads() > 0 ? omp_get_max_threads() : 1;
#else
  return 1;
#endif
}
std::atomic<int> g_threads{default_threads()};
}  // namespace

int max_threads() { return g_threads.load(std::memory_order_relaxed); }

void set_max_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1");
  g_threads.store(n, std::memory_order_relaxed);
}

bool have_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace fastbp
