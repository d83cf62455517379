// Sums in double that vectorise yet never change order: element i of each run goes to lane
// i % kLanes, and the lanes are added up in a fixed tree at the end. One chain of adds would
// wait on each add's latency; independent lanes stay in vector registers. The result depends
// on the values only, not on threads or the CPU path.
#pragma once
#include <cstdint>

namespace fastbp {

struct LaneSum {
  static constexpr int kLanes = 8;
  double lane[kLanes] = {};

  // Adds f(i) for i < n, one run.
  template <class F>
  void add(int64_t n, F&& f) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
      for (int l = 0; l < kLanes; ++l) lane[l] += f(i + l);
    for (int l = 0; i < n; ++i, ++l) lane[l] += f(i);
  }
  double total() const {
    return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
  }
};

// The sum of v[0..n) in double, through the lanes.
template <typename T>
double lane_sum(const T* v, int64_t n) {
  LaneSum sum;
  sum.add(n, [&](int64_t i) { return static_cast<double>(v[i]); });
  return sum.total();
}

}  // namespace fastbp
