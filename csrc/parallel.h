// Thread count, the one parallel-loop helper every driver uses, and the floating-point mode every
// computing thread runs in. Threading lives here and in the GEMM driver, never inside kernels.
#pragma once
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace fastbp {

// Threads the calling thread's operations use, >= 1: the count set for this thread (a
// `fastbp.threads(n)` block) if any, else the process-wide one (set_num_threads; default
// OpenMP's, i.e. OMP_NUM_THREADS or the CPU count) capped by the calling thread's OpenMP limit,
// which is what threadpoolctl and omp_set_num_threads change. A forked child runs on one.
int max_threads();
void set_max_threads(int n);         // process-wide, n >= 1; also this thread's OpenMP limit
int thread_override();               // this thread's own count, 0 when it has none
void set_thread_override(int n);     // n >= 1 sets this thread's count, 0 clears it
bool have_openmp();
void note_parallel_region();  // after this, a fork()ed child runs single-threaded

// The OpenMP runtime that was linked: the shared library that provides it (empty when unknown)
// and the version of the OpenMP specification the compiler implements (e.g. 201511 for 4.5).
struct OpenMPInfo {
  std::string library;
  int spec_date = 0;
};
OpenMPInfo openmp_info();

// Flush-to-zero and denormals-are-zero while fastbp computes (fastbp.set_flush_denormal). Off by
// default, so results are exact; on, subnormal operands read as zero and results that would be
// subnormal are zero, as with torch.set_flush_denormal(True). Cores that take a microcode assist
// for subnormal operands (Intel's) run them tens of times slower without it. x86 only:
// set_flush_denormal returns false and changes nothing elsewhere.
bool flush_denormal();
bool set_flush_denormal(bool on);

// The calling thread's vector floating-point mode for a scope, flushing or not as set (whatever
// the thread had before, so results never depend on it), restored at the end. Every binding
// and every thread of a parallel region computes inside one.
class DenormalScope {
 public:
  DenormalScope() {
#if defined(__x86_64__) || defined(__i386__)
    constexpr unsigned kFlush = 0x8040;  // MXCSR's FTZ and DAZ bits
    saved_ = _mm_getcsr();
    const unsigned want = flush_denormal() ? saved_ | kFlush : saved_ & ~kFlush;
    if (want != saved_) _mm_setcsr(want);
#endif
  }
  ~DenormalScope() {
#if defined(__x86_64__) || defined(__i386__)
    if (_mm_getcsr() != saved_) _mm_setcsr(saved_);
#endif
  }
  DenormalScope(const DenormalScope&) = delete;
  DenormalScope& operator=(const DenormalScope&) = delete;

 private:
  unsigned saved_ = 0;
};

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Runs f(i, tid) for i in [0, n) with dynamic assignment over up to nt threads. The result of
// each i must not depend on which thread runs it (that keeps outputs thread-count independent).
// With nt <= 1 or n <= 1 no parallel region is opened. Exceptions are re-thrown on the caller.
template <class F>
void parallel_for(int64_t n, int nt, F&& f) {
  if (nt > n) nt = static_cast<int>(n);
  if (nt <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i, 0);
    return;
  }
#ifdef _OPENMP
  note_parallel_region();
  std::exception_ptr error;
  std::mutex error_mutex;
#pragma omp parallel num_threads(nt)
  {
    const DenormalScope mode;
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
      try {
        f(i, omp_get_thread_num());
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
#else
  for (int64_t i = 0; i < n; ++i) f(i, 0);
#endif
}

}  // namespace fastbp
