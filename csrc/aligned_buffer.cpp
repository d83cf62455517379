#include "aligned_buffer.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

namespace fastbp {
namespace {

constexpr size_t kKeepFrom = size_t(256) << 10;         // smaller blocks go straight back
constexpr size_t kScratchCacheBytes = size_t(64) << 20;  // per thread
constexpr int kSlots = 4;

std::atomic<size_t> g_in_use{0}, g_peak{0};
std::atomic<size_t> g_workspace_limit{size_t(64) << 20};

struct Cache {
  void* block[kSlots] = {};
  size_t bytes[kSlots] = {};
  size_t total = 0;
  ~Cache() {
    for (int i = 0; i < kSlots; ++i) std::free(block[i]);
  }
};
thread_local Cache t_cache;
thread_local int64_t t_in_use = 0;  // this thread's scratch in use (a block is freed where made)

void note_use(size_t bytes) {
  t_in_use += static_cast<int64_t>(bytes);
  const size_t now = g_in_use.fetch_add(bytes) + bytes;
  size_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}

}  // namespace

void* scratch_alloc(size_t bytes) {
  Cache& c = t_cache;
  int best = -1;
  for (int i = 0; i < kSlots; ++i)  // the smallest kept block that fits, if not twice too big
    if (c.block[i] && c.bytes[i] >= bytes && c.bytes[i] <= 2 * bytes &&
        (best < 0 || c.bytes[i] < c.bytes[best]))
      best = i;
  void* p;
  if (best >= 0) {
    p = c.block[best];
    c.total -= c.bytes[best];
    c.block[best] = nullptr;
    note_use(bytes);
    return p;
  }
  p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  note_use(bytes);
  return p;
}

void scratch_free(void* p, size_t bytes) {
  g_in_use.fetch_sub(bytes);
  t_in_use -= static_cast<int64_t>(bytes);
  Cache& c = t_cache;
  if (bytes >= kKeepFrom && bytes <= kScratchCacheBytes) {
    // make room: drop the smallest kept blocks until this one fits
    while (c.total + bytes > kScratchCacheBytes || std::count(c.block, c.block + kSlots, nullptr) == 0) {
      int small = -1;
      for (int i = 0; i < kSlots; ++i)
        if (c.block[i] && (small < 0 || c.bytes[i] < c.bytes[small])) small = i;
      if (small < 0 || c.bytes[small] > bytes) break;
      std::free(c.block[small]);
      c.total -= c.bytes[small];
      c.block[small] = nullptr;
    }
    for (int i = 0; i < kSlots; ++i)
      if (!c.block[i] && c.total + bytes <= kScratchCacheBytes) {
        c.block[i] = p;
        c.bytes[i] = bytes;
        c.total += bytes;
        return;
      }
  }
  std::free(p);
}

size_t scratch_in_use() { return g_in_use.load(); }
size_t scratch_peak() { return g_peak.load(); }
void reset_scratch_peak() { g_peak.store(g_in_use.load()); }

size_t workspace_limit() { return g_workspace_limit.load(); }
size_t workspace_budget() {
  const size_t limit = workspace_limit(), held = t_in_use > 0 ? size_t(t_in_use) : 0;
  return held < limit ? limit - held : 0;
}
void set_workspace_limit(size_t bytes) { g_workspace_limit.store(bytes); }

}  // namespace fastbp
