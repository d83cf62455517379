// The module: the checked entries of each area (bind_conv.cpp, bind_linear.cpp, which give the
// detailed argument errors) and the low-level entries below, whose callers in fastbp.functional
// check first; the checks here are a safety net so that no call into _core can crash.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/numpy.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>
#include <string>

#include "aligned_buffer.h"
#include "c_api.h"
#include "conv.h"
#include "dispatch.h"
#include "gemm/batched.h"
#include "gemm/blocking.h"
#include "gemm/gemm.h"
#include "linear.h"
#include "parallel.h"

namespace py = pybind11;
using fastbp::ConvParams;

namespace fastbp::bind {
void register_args(py::module_& m);
void register_conv(py::module_& m);
void register_linear(py::module_& m);
void register_norm(py::module_& m);
}  // namespace fastbp::bind

namespace {

using Pair = std::pair<int64_t, int64_t>;
constexpr int kNpyAligned = py::detail::npy_api::NPY_ARRAY_ALIGNED_;

void require(bool ok, const std::string& msg) {
  if (!ok) throw py::value_error(msg);
}

bool is_dtype(const py::array& a, const py::dtype& dt) { return a.dtype().equal(dt); }

// Float kind of `a` (float32 -> 'f', float64 -> 'd'), else TypeError.
char float_kind(const py::array& a, const char* name) {
  if (is_dtype(a, py::dtype::of<float>())) return 'f';
  if (is_dtype(a, py::dtype::of<double>())) return 'd';
  throw py::type_error(std::string(name) + ": expected float32 or float64, got " +
                       py::str(a.dtype()).cast<std::string>());
}

void check_dense(const py::array& a, const char* name, char kind, py::ssize_t ndim) {
  if (float_kind(a, name) != kind)
    throw py::type_error(std::string(name) + ": dtype differs from the other arguments");
  require(a.ndim() == ndim, std::string(name) + ": expected " + std::to_string(ndim) + "-d array");
  require((a.flags() & py::array::c_style) && (a.flags() & kNpyAligned),
          std::string(name) + ": expected a C-contiguous aligned array");
}

template <typename T>
const T* ptr(const py::array& a) { return static_cast<const T*>(a.data()); }

template <typename T>
py::array conv_forward_t(const ConvParams& p, const py::array& x, const py::array& w,
                         const py::object& bias) {
  py::array_t<T> y({p.N, p.O, p.Ho, p.Wo});
  const T* b = bias.is_none() ? nullptr : ptr<T>(bias.cast<py::array>());
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    const fastbp::DenormalScope mode;
    fastbp::conv2d_forward<T>(p, ptr<T>(x), ptr<T>(w), b, yp);
  }
  return y;
}

ConvParams conv_params(const py::array& x, const py::array& w, Pair stride, Pair padding,
                       Pair dilation, int64_t groups, Pair out) {
  ConvParams p{};
  p.N = x.shape(0); p.C = x.shape(1); p.H = x.shape(2); p.W = x.shape(3);
  p.O = w.shape(0); p.kh = w.shape(2); p.kw = w.shape(3);
  p.sh = stride.first; p.sw = stride.second;
  p.ph = padding.first; p.pw = padding.second;
  p.dh = dilation.first; p.dw = dilation.second;
  p.groups = groups; p.Ho = out.first; p.Wo = out.second;
  require(groups >= 1 && p.C % groups == 0 && p.O % groups == 0 && w.shape(1) * groups == p.C,
          "groups/channels mismatch");
  require(p.sh >= 1 && p.sw >= 1 && p.dh >= 1 && p.dw >= 1 && p.ph >= 0 && p.pw >= 0,
          "stride/dilation must be >= 1 and padding >= 0");
  require(p.Ho >= 1 && p.Wo >= 1, "output size must be positive");
  return p;
}

py::array conv2d_forward(const py::array& x, const py::array& w, const py::object& bias,
                         Pair stride, Pair padding, Pair dilation, int64_t groups, Pair out) {
  const char k = float_kind(x, "input");
  check_dense(x, "input", k, 4);
  check_dense(w, "weight", k, 4);
  ConvParams p = conv_params(x, w, stride, padding, dilation, groups, out);
  if (!bias.is_none()) {
    py::array b = bias.cast<py::array>();
    check_dense(b, "bias", k, 1);
    require(b.shape(0) == p.O, "bias: expected one value per output channel");
  }
  return k == 'f' ? conv_forward_t<float>(p, x, w, bias) : conv_forward_t<double>(p, x, w, bias);
}

template <typename T>
py::tuple conv_backward_t(const ConvParams& p, const py::array& dy, const py::array& x,
                          const py::array& w, bool ig, bool wg, bool bg) {
  py::object gx = py::none(), gw = py::none(), gb = py::none();
  T *gxp = nullptr, *gwp = nullptr, *gbp = nullptr;
  if (ig) { py::array_t<T> a({p.N, p.C, p.H, p.W}); gxp = a.mutable_data(); gx = a; }
  if (wg) { py::array_t<T> a({p.O, p.C / p.groups, p.kh, p.kw}); gwp = a.mutable_data(); gw = a; }
  if (bg) { py::array_t<T> a({p.O}); gbp = a.mutable_data(); gb = a; }
  {
    py::gil_scoped_release release;
    const fastbp::DenormalScope mode;
    fastbp::conv2d_backward<T>(p, ptr<T>(dy), ptr<T>(x), ptr<T>(w), gxp, gwp, gbp);
  }
  return py::make_tuple(gx, gw, gb);
}

py::tuple conv2d_backward(const py::array& dy, const py::array& x, const py::array& w,
                          Pair stride, Pair padding, Pair dilation, int64_t groups, bool ig,
                          bool wg, bool bg) {
  const char k = float_kind(x, "input");
  check_dense(x, "input", k, 4);
  check_dense(w, "weight", k, 4);
  check_dense(dy, "grad_output", k, 4);
  ConvParams p = conv_params(x, w, stride, padding, dilation, groups, {dy.shape(2), dy.shape(3)});
  require(dy.shape(0) == p.N && dy.shape(1) == p.O, "grad_output: shape mismatch");
  return k == 'f' ? conv_backward_t<float>(p, dy, x, w, ig, wg, bg)
                  : conv_backward_t<double>(p, dy, x, w, ig, wg, bg);
}

// Element strides of a 2-d array (numpy gives bytes); any sign is fine.
std::pair<int64_t, int64_t> elem_strides(const py::array& a, const char* name) {
  const int64_t s0 = a.strides(0), s1 = a.strides(1), is = a.itemsize();
  require(s0 % is == 0 && s1 % is == 0 && (a.flags() & kNpyAligned),
          std::string(name) + ": strides must be multiples of the item size");
  return {s0 / is, s1 / is};
}

template <typename T>
void gemm_t(const py::array& a, const py::array& b, py::array& c, bool ta, bool tb, double alpha,
            double beta) {
  auto [ra, ca] = elem_strides(a, "a");
  auto [rb, cb] = elem_strides(b, "b");
  if (ta) std::swap(ra, ca);
  if (tb) std::swap(rb, cb);
  const int64_t M = c.shape(0), N = c.shape(1), K = ta ? a.shape(0) : a.shape(1);
  T* cp = static_cast<T*>(c.mutable_data());
  const int64_t ldc = c.strides(0) / c.itemsize();
  py::gil_scoped_release release;
  const fastbp::DenormalScope mode;
  fastbp::gemm_strided<T>(M, N, K, static_cast<T>(alpha), ptr<T>(a), ra, ca, ptr<T>(b), rb, cb,
                          static_cast<T>(beta), cp, ldc);
}

void gemm(const py::array& a, const py::array& b, py::array& c, bool ta, bool tb, double alpha,
          double beta) {
  const char k = float_kind(a, "a");
  require(a.ndim() == 2 && b.ndim() == 2 && c.ndim() == 2, "gemm: a, b, out must be 2-d");
  if (float_kind(b, "b") != k || float_kind(c, "out") != k)
    throw py::type_error("gemm: a, b and out must share one dtype");
  const int64_t M = ta ? a.shape(1) : a.shape(0), K = ta ? a.shape(0) : a.shape(1);
  const int64_t Kb = tb ? b.shape(1) : b.shape(0), N = tb ? b.shape(0) : b.shape(1);
  require(K == Kb && c.shape(0) == M && c.shape(1) == N, "gemm: shape mismatch");
  require(c.writeable() && c.strides(1) == c.itemsize() && c.strides(0) % c.itemsize() == 0 &&
              c.strides(0) / c.itemsize() >= std::max<int64_t>(N, 1) &&
              (c.flags() & kNpyAligned),
          "gemm: out must be writeable with unit column stride");
  if (k == 'f') gemm_t<float>(a, b, c, ta, tb, alpha, beta);
  else gemm_t<double>(a, b, c, ta, tb, alpha, beta);
}

// dX of a convolution from dY, the weight and the input's size (N, C, H, W): x itself is not
// needed. This is also the forward of a transposed convolution.
template <typename T>
py::array conv_backward_input_t(const ConvParams& p, const py::array& dy, const py::array& w) {
  py::array_t<T> gx({p.N, p.C, p.H, p.W});
  T* gxp = gx.mutable_data();
  {
    py::gil_scoped_release release;
    const fastbp::DenormalScope mode;
    fastbp::conv2d_backward_input<T>(p, ptr<T>(dy), ptr<T>(w), gxp);
  }
  return gx;
}

py::array conv2d_backward_input(const py::array& dy, const py::array& w,
                                std::vector<int64_t> input_size, Pair stride, Pair padding,
                                Pair dilation, int64_t groups) {
  const char k = float_kind(w, "weight");
  check_dense(w, "weight", k, 4);
  check_dense(dy, "grad_output", k, 4);
  require(input_size.size() == 4, "input_size: expected (N, C, H, W)");
  for (int64_t v : input_size) require(v >= 0, "input_size: sizes must be >= 0");
  ConvParams p{};
  p.N = input_size[0]; p.C = input_size[1]; p.H = input_size[2]; p.W = input_size[3];
  p.O = w.shape(0); p.kh = w.shape(2); p.kw = w.shape(3);
  p.sh = stride.first; p.sw = stride.second;
  p.ph = padding.first; p.pw = padding.second;
  p.dh = dilation.first; p.dw = dilation.second;
  p.groups = groups; p.Ho = dy.shape(2); p.Wo = dy.shape(3);
  require(groups >= 1 && p.C % groups == 0 && p.O % groups == 0 && w.shape(1) * groups == p.C,
          "groups/channels mismatch");
  require(p.sh >= 1 && p.sw >= 1 && p.dh >= 1 && p.dw >= 1 && p.ph >= 0 && p.pw >= 0,
          "stride/dilation must be >= 1 and padding >= 0");
  require(p.Ho >= 1 && p.Wo >= 1, "output size must be positive");
  // every output pixel must lie inside the input plus padding on both sides (as in conv2d)
  require((p.Ho - 1) * p.sh + (p.kh - 1) * p.dh + 1 <= p.H + 2 * p.ph &&
              (p.Wo - 1) * p.sw + (p.kw - 1) * p.dw + 1 <= p.W + 2 * p.pw,
          "grad_output: larger than the convolution of input_size gives");
  require(dy.shape(0) == p.N && dy.shape(1) == p.O, "grad_output: shape mismatch");
  return k == 'f' ? conv_backward_input_t<float>(p, dy, w) : conv_backward_input_t<double>(p, dy, w);
}

// Element strides of a 3-d array (batch, rows, columns); any sign, 0 for a broadcast batch.
std::array<int64_t, 3> elem_strides3(const py::array& a, const char* name) {
  const int64_t is = a.itemsize();
  std::array<int64_t, 3> s{};
  for (int d = 0; d < 3; ++d) {
    require(a.strides(d) % is == 0, std::string(name) + ": strides must be multiples of the item size");
    s[d] = a.strides(d) / is;
  }
  require(a.flags() & kNpyAligned, std::string(name) + ": expected an aligned array");
  return s;
}

template <typename T>
void gemm_batched_t(const py::array& a, const py::array& b, py::array& c, double alpha,
                    double beta) {
  const auto sa = elem_strides3(a, "a"), sb = elem_strides3(b, "b");
  const int64_t batch = c.shape(0), M = c.shape(1), N = c.shape(2), K = a.shape(2);
  const int64_t bs_c = c.strides(0) / c.itemsize(), ldc = c.strides(1) / c.itemsize();
  T* cp = static_cast<T*>(c.mutable_data());
  py::gil_scoped_release release;
  const fastbp::DenormalScope mode;
  fastbp::gemm_batched<T>(batch, M, N, K, static_cast<T>(alpha), ptr<T>(a), sa[0], sa[1], sa[2],
                          ptr<T>(b), sb[0], sb[1], sb[2], static_cast<T>(beta), cp, bs_c, ldc);
}

// c[i] = alpha * a[i] @ b[i] + beta * c[i] over the leading axis; a, b any strides, c dense.
void gemm_batched(const py::array& a, const py::array& b, py::array& c, double alpha,
                  double beta) {
  const char k = float_kind(a, "a");
  require(a.ndim() == 3 && b.ndim() == 3 && c.ndim() == 3, "gemm_batched: a, b, out must be 3-d");
  if (float_kind(b, "b") != k || float_kind(c, "out") != k)
    throw py::type_error("gemm_batched: a, b and out must share one dtype");
  require(a.shape(0) == c.shape(0) && b.shape(0) == c.shape(0) && a.shape(1) == c.shape(1) &&
              b.shape(2) == c.shape(2) && a.shape(2) == b.shape(1),
          "gemm_batched: shape mismatch");
  require(c.writeable() && (c.flags() & py::array::c_style) && (c.flags() & kNpyAligned),
          "gemm_batched: out must be a writeable C-contiguous aligned array");
  if (k == 'f') gemm_batched_t<float>(a, b, c, alpha, beta);
  else gemm_batched_t<double>(a, b, c, alpha, beta);
}

// erf elementwise into a new array: the exact GELU needs it and numpy has none.
template <typename T>
py::array erf_t(const py::array& x) {
  py::array_t<T> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const T* xp = ptr<T>(x);
  T* yp = y.mutable_data();
  const int64_t n = x.size();
  py::gil_scoped_release release;
  const fastbp::DenormalScope mode;
  for (int64_t i = 0; i < n; ++i) yp[i] = std::erf(xp[i]);
  return y;
}

py::array erf_array(const py::array& x) {
  const char k = float_kind(x, "x");
  require((x.flags() & py::array::c_style) && (x.flags() & kNpyAligned),
          "erf: expected a C-contiguous aligned array");
  return k == 'f' ? erf_t<float>(x) : erf_t<double>(x);
}

template <typename T>
py::dict blocking_info(fastbp::Capability cap) {
  const auto& b = fastbp::gemm_blocking<T>(cap);
  py::dict d;
  d["mr"] = b.mr; d["nr"] = b.nr; d["mc"] = b.mc; d["kc"] = b.kc; d["nc"] = b.nc;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastbp compiled core: im2col/col2im, packed GEMM, conv and linear kernels";
  m.attr("__version__") = FASTBP_VERSION;
  fastbp::bind::register_args(m);
  fastbp::bind::register_conv(m);
  fastbp::bind::register_linear(m);
  fastbp::bind::register_norm(m);
  // fastbp.cython_api reads the C entry points from here, so it shares this module's kernels
  m.attr("_C_API") = py::capsule(&fastbp::c_api_table(), "fastbp._core._C_API");

  m.def("conv2d_forward", &conv2d_forward, py::arg("x"), py::arg("weight"), py::arg("bias"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("out_size"));
  m.def("conv2d_backward", &conv2d_backward, py::arg("grad_output"), py::arg("x"),
        py::arg("weight"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("input_grad"), py::arg("weight_grad"), py::arg("bias_grad"));
  m.def("conv2d_backward_input", &conv2d_backward_input, py::arg("grad_output"), py::arg("weight"),
        py::arg("input_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"));
  m.def("gemm_batched", &gemm_batched, py::arg("a"), py::arg("b"), py::arg("out"),
        py::arg("alpha"), py::arg("beta"));
  m.def("erf", &erf_array, py::arg("x"));
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a"),
        py::arg("trans_b"), py::arg("alpha"), py::arg("beta"));

  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("set_num_threads: n must be >= 1, got " + std::to_string(n));
    fastbp::set_max_threads(n);
  }, py::arg("n"));
  m.def("get_num_threads", &fastbp::max_threads);
  m.def("has_openmp", &fastbp::have_openmp);
  m.def("cpu_capability", [] { return std::string(fastbp::capability_name(fastbp::active_capability())); });
  // Called by fastbp/__init__.py so that a bad FASTBP_CPU_CAPABILITY surfaces as ValueError.
  m.def("init_dispatch", [] {
    try {
      fastbp::init_dispatch();
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  });
  m.def("supported_capabilities", &fastbp::supported_capabilities);
  m.def("set_cpu_capability", [](const std::string& name) {
    try {
      fastbp::set_capability(name);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  }, py::arg("name"));
  m.def("flush_denormal", &fastbp::flush_denormal);
  m.def("set_flush_denormal", &fastbp::set_flush_denormal, py::arg("on"));
  m.def("alu_on_fma_ports", &fastbp::alu_on_fma_ports);
  m.def("set_alu_on_fma_ports", &fastbp::set_alu_on_fma_ports, py::arg("shared"));
  m.def("gemm_blocking", [](const std::string& dtype) {
    const auto cap = fastbp::active_capability();
    if (dtype == "float32") return blocking_info<float>(cap);
    if (dtype == "float64") return blocking_info<double>(cap);
    throw py::value_error("gemm_blocking: dtype must be 'float32' or 'float64'");
  }, py::arg("dtype"));
  m.def("workspace_limit", &fastbp::workspace_limit);
  m.def("set_workspace_limit", &fastbp::set_workspace_limit, py::arg("bytes"));
  m.def("scratch_peak", &fastbp::scratch_peak);
  m.def("reset_scratch_peak", &fastbp::reset_scratch_peak);
  m.def("thread_override", &fastbp::thread_override);
  m.def("set_thread_override", [](int n) {
    if (n < 0) throw py::value_error("threads: n must be >= 1, got " + std::to_string(n));
    fastbp::set_thread_override(n);
  }, py::arg("n"));
  m.def("build_info", [] {
    py::dict d;
#if defined(__clang__)
    d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    d["compiler"] = std::string("gcc ") + __VERSION__;
#else
    d["compiler"] = std::string("unknown");
#endif
    d["build_type"] = FASTBP_BUILD_TYPE;
    d["cxx_flags"] = FASTBP_CXX_FLAGS;
    d["kernel_flags"] = FASTBP_KERNEL_FLAGS;
    const auto omp = fastbp::openmp_info();
    d["openmp_library"] = omp.library;
    d["openmp_spec"] = omp.spec_date;
    return d;
  });
}
