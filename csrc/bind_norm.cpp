// Python entries of the batch-norm kernels (norm.h). fastbp.nn.functional.batch_norm checks the
// arguments and views the input as (N, C, M); the checks here keep a bad call from crashing.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bind_args.h"
#include "norm.h"
#include "parallel.h"

namespace fastbp::bind {
namespace {

// A C-contiguous (N, C, M) array of float32 or float64: its shape and kind.
ChannelShape channel_shape(const char* op, const py::array& a, char& kind) {
  const std::string pre = std::string(op) + ": ";
  if (a.dtype().equal(py::dtype::of<float>())) kind = 'f';
  else if (a.dtype().equal(py::dtype::of<double>())) kind = 'd';
  else type_error(pre + "expected float32 or float64, got " + py_repr(a.dtype()));
  if (a.ndim() != 3) value_error(pre + "expected an (N, C, M) array, got shape " + tuple_repr(shape_of(a)));
  if (!(a.flags() & py::array::c_style) || !(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    value_error(pre + "expected a C-contiguous aligned array");
  return ChannelShape{a.shape(0), a.shape(1), a.shape(2)};
}

// Another array of the same kind and shape (x_hat next to g), or a length-C vector.
void check_like(const char* op, const char* name, const py::array& a, char kind,
                const Shape& shape) {
  char k = 0;
  if (a.ndim() == 3) channel_shape(op, a, k);
  else if (a.dtype().equal(py::dtype::of<float>())) k = 'f';
  else if (a.dtype().equal(py::dtype::of<double>())) k = 'd';
  if (k != kind || shape_of(a) != shape || !(a.flags() & py::array::c_style))
    value_error(std::string(op) + ": " + name + " must be a C-contiguous array of shape " +
                tuple_repr(shape) + " and the input's dtype, got " + tuple_repr(shape_of(a)));
}

py::array optional(py::handle h) { return h.is_none() ? no_array() : h.cast<py::array>(); }

template <typename T>
T* out_data(py::array& a) { return a ? static_cast<T*>(a.mutable_data()) : nullptr; }

py::tuple channel_moments_py(const py::array& x) {
  char kind = 0;
  const ChannelShape s = channel_shape("channel_moments", x, kind);
  py::array_t<double> mean(s.C), var(s.C);
  double *mp = mean.mutable_data(), *vp = var.mutable_data();
  py::gil_scoped_release release;
  const fastbp::DenormalScope mode;
  if (kind == 'f') channel_moments<float>(s, data<float>(x), mp, vp);
  else channel_moments<double>(s, data<double>(x), mp, vp);
  py::gil_scoped_acquire acquire;
  return py::make_tuple(mean, var);
}

template <typename T>
py::tuple normalize_t(const ChannelShape& s, const py::array& x, const py::array& center,
                      const py::array& scale, const py::array& shift, const py::array& inv_std) {
  py::array out = py::array_t<T>(shape_of(x));
  py::array x_hat = inv_std ? py::array(py::array_t<T>(shape_of(x))) : no_array();
  T *op = out_data<T>(out), *hp = out_data<T>(x_hat);
  {
    py::gil_scoped_release release;
    const fastbp::DenormalScope mode;
    channel_normalize<T>(s, data<T>(x), data<double>(center), data<T>(scale), data<T>(shift),
                         data<T>(inv_std), op, hp);
  }
  return py::make_tuple(out, x_hat ? py::object(x_hat) : py::object(py::none()));
}

py::tuple channel_normalize_py(const py::array& x, const py::array& center, const py::array& scale,
                               py::handle shift_h, py::handle inv_std_h) {
  const char* op = "channel_normalize";
  char kind = 0;
  const ChannelShape s = channel_shape(op, x, kind);
  const py::array shift = optional(shift_h), inv_std = optional(inv_std_h);
  const Shape vec{s.C};
  check_like(op, "center", center, 'd', vec);
  check_like(op, "scale", scale, kind, vec);
  if (shift) check_like(op, "shift", shift, kind, vec);
  if (inv_std) check_like(op, "inv_std", inv_std, kind, vec);
  return kind == 'f' ? normalize_t<float>(s, x, center, scale, shift, inv_std)
                     : normalize_t<double>(s, x, center, scale, shift, inv_std);
}

py::tuple channel_grad_sums_py(const py::array& g, py::handle x_hat_h) {
  const char* op = "channel_grad_sums";
  char kind = 0;
  const ChannelShape s = channel_shape(op, g, kind);
  const py::array x_hat = optional(x_hat_h);
  if (x_hat) check_like(op, "x_hat", x_hat, kind, shape_of(g));
  py::array_t<double> sum_g(s.C);
  py::object sum_gx = py::none();
  double* gxp = nullptr;
  if (x_hat) {
    py::array_t<double> a(s.C);
    gxp = a.mutable_data();
    sum_gx = a;
  }
  double* gp = sum_g.mutable_data();
  {
    py::gil_scoped_release release;
    const fastbp::DenormalScope mode;
    if (kind == 'f') channel_grad_sums<float>(s, data<float>(g), data<float>(x_hat), gp, gxp);
    else channel_grad_sums<double>(s, data<double>(g), data<double>(x_hat), gp, gxp);
  }
  return py::make_tuple(sum_g, sum_gx);
}

template <typename T>
py::array grad_input_t(const ChannelShape& s, const py::array& g, const py::array& x_hat,
                       const py::array& a, const py::array& b, const py::array& c) {
  py::array_t<T> gx(shape_of(g));
  T* out = gx.mutable_data();
  {
    py::gil_scoped_release release;
    const fastbp::DenormalScope mode;
    channel_grad_input<T>(s, data<T>(g), data<T>(x_hat), data<T>(a), data<T>(b), data<T>(c),
                          out);
  }
  return std::move(gx);
}

py::array channel_grad_input_py(const py::array& g, py::handle x_hat_h, const py::array& a,
                                py::handle b_h, py::handle c_h) {
  const char* op = "channel_grad_input";
  char kind = 0;
  const ChannelShape s = channel_shape(op, g, kind);
  const py::array x_hat = optional(x_hat_h), b = optional(b_h), c = optional(c_h);
  const Shape vec{s.C};
  check_like(op, "a", a, kind, vec);
  if (x_hat) {
    check_like(op, "x_hat", x_hat, kind, shape_of(g));
    if (!b || !c) value_error(std::string(op) + ": b and c are needed with x_hat");
    check_like(op, "b", b, kind, vec);
    check_like(op, "c", c, kind, vec);
  }
  return kind == 'f' ? grad_input_t<float>(s, g, x_hat, a, b, c)
                     : grad_input_t<double>(s, g, x_hat, a, b, c);
}

}  // namespace

void register_norm(py::module_& m) {
  m.def("channel_moments", &channel_moments_py, py::arg("x"));
  m.def("channel_normalize", &channel_normalize_py, py::arg("x"), py::arg("center"),
        py::arg("scale"), py::arg("shift"), py::arg("inv_std"));
  m.def("channel_grad_sums", &channel_grad_sums_py, py::arg("grad"), py::arg("x_hat"));
  m.def("channel_grad_input", &channel_grad_input_py, py::arg("grad"), py::arg("x_hat"),
        py::arg("a"), py::arg("b"), py::arg("c"));
}

}  // namespace fastbp::bind
