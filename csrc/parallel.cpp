#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#include <pthread.h>
#define FASTBP_HAVE_POSIX 1
#endif

namespace fastbp {
namespace {
int openmp_limit() {
#ifdef _OPENMP
  return std::max(omp_get_max_threads(), 1);
#else
  return 1;
#endif
}
void set_openmp_limit(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

std::atomic<int> g_threads{openmp_limit()};
thread_local int t_override = 0;
// OpenMP's thread pool does not survive fork(): a child of a process that opened a parallel
// region would wait forever for the parent's workers, so it runs on the calling thread only.
std::atomic<bool> g_used_pool{false};
std::atomic<bool> g_single_after_fork{false};
std::atomic<bool> g_flush_denormal{false};

#ifdef FASTBP_HAVE_POSIX
void on_fork_child() {
  if (g_used_pool.load()) g_single_after_fork.store(true);
}
const int g_atfork_registered = pthread_atfork(nullptr, nullptr, on_fork_child);
#endif
}  // namespace

int max_threads() {
  if (!have_openmp() || g_single_after_fork.load(std::memory_order_relaxed)) return 1;
  if (t_override) return t_override;
  return std::min(g_threads.load(std::memory_order_relaxed), openmp_limit());
}

void note_parallel_region() {
  if (!g_used_pool.load(std::memory_order_relaxed)) g_used_pool.store(true);
}

void set_max_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1");
  g_threads.store(n, std::memory_order_relaxed);
  set_openmp_limit(n);
}

int thread_override() { return t_override; }

void set_thread_override(int n) {
  if (n < 0) throw std::invalid_argument("threads: n must be >= 1");
  t_override = n;
}

bool flush_denormal() { return g_flush_denormal.load(); }

bool set_flush_denormal(bool on) {
#if defined(__x86_64__) || defined(__i386__)
  g_flush_denormal.store(on);
  return true;
#else
  (void)on;
  return false;
#endif
}

bool have_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

OpenMPInfo openmp_info() {
  OpenMPInfo info;
#ifdef _OPENMP
  info.spec_date = _OPENMP;
#ifdef FASTBP_HAVE_POSIX
  Dl_info dl{};
  if (dladdr(reinterpret_cast<void*>(&omp_get_max_threads), &dl) && dl.dli_fname)
    info.library = dl.dli_fname;
#endif
#endif
  return info;
}

}  // namespace fastbp
