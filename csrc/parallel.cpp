#include "parallel.h"

#include <atomic>
#include <stdexcept>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define FASTBP_HAVE_ATFORK 1
#endif

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
// OpenMP's thread pool does not survive fork(): a child of a process that opened a parallel
// region would wait forever for the parent's workers, so it runs on the calling thread only.
std::atomic<bool> g_used_pool{false};
std::atomic<bool> g_single_after_fork{false};

#ifdef FASTBP_HAVE_ATFORK
void on_fork_child() {
  if (g_used_pool.load()) g_single_after_fork.store(true);
}
const int g_atfork_registered = pthread_atfork(nullptr, nullptr, on_fork_child);
#endif
}  // namespace

int max_threads() {
  if (!have_openmp() || g_single_after_fork.load(std::memory_order_relaxed)) return 1;
  return g_threads.load(std::memory_order_relaxed);
}

void note_parallel_region() {
  if (!g_used_pool.load(std::memory_order_relaxed)) g_used_pool.store(true);
}

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
