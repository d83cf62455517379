// Python entries of linear forward and backward: the one place their arguments are checked
// (torch.nn.functional.linear's semantics), then the kernels, GIL released.
#include <pybind11/pybind11.h>

#include <string>

#include "bind_args.h"
#include "linear.h"
#include "parallel.h"

namespace fastbp::bind {
namespace {

struct LinearCall {
  int64_t rows = 0, I = 0, O = 0;  // input viewed as rows x I
  char kind = 0;
  py::array x = no_array(), w = no_array(), b = no_array(), gy = no_array();  // b, gy may be absent
  Shape x_shape, y_shape;
};

LinearCall check_linear(const char* op, py::handle input, py::handle weight, py::handle bias,
                        py::handle grad_output) {
  const std::string pre = std::string(op) + ": ";
  FloatArgs args(op);
  py::array x = args.add("input", input);
  py::array w = args.add("weight", weight);
  py::array b = args.add("bias", bias, true);
  py::array gy = grad_output ? args.add("grad_output", grad_output) : no_array();
  LinearCall call;
  call.kind = args.common_kind();
  const Shape xs = shape_of(x);
  if (x.ndim() < 1)
    value_error(pre + "input must have at least 1 dimension (..., in_features), got shape " +
                tuple_repr(xs));
  if (w.ndim() != 2)
    value_error(pre + "weight must be 2-d (out_features, in_features), got shape " +
                tuple_repr(shape_of(w)));
  call.O = w.shape(0);
  call.I = w.shape(1);
  if (xs.back() != call.I)
    value_error(pre + "input has " + std::to_string(xs.back()) + " features (shape " +
                tuple_repr(xs) + ") but weight expects in_features=" + std::to_string(call.I) +
                " (weight shape " + tuple_repr(shape_of(w)) + ")");
  if (b && (b.ndim() != 1 || b.shape(0) != call.O))
    value_error(pre + "bias must have shape (" + std::to_string(call.O) + ",) to match weight " +
                tuple_repr(shape_of(w)) + ", got " + tuple_repr(shape_of(b)));
  call.y_shape = xs;
  call.y_shape.back() = call.O;
  check_size(op, "output", call.y_shape);
  if (gy && shape_of(gy) != call.y_shape)
    value_error(pre + "grad_output must have shape " + tuple_repr(call.y_shape) +
                " (the output of input " + tuple_repr(xs) + " and weight " +
                tuple_repr(shape_of(w)) + "), got " + tuple_repr(shape_of(gy)));
  call.rows = 1;
  for (size_t i = 0; i + 1 < xs.size(); ++i) call.rows *= xs[i];
  call.x = dense(x);
  call.w = dense(w);
  if (b) call.b = dense(b);
  if (gy) call.gy = dense(gy);
  call.x_shape = xs;
  return call;
}

template <typename T>
py::array linear_t(const LinearCall& c, bool relu) {
  py::array_t<T> y(c.y_shape);
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    const fastbp::DenormalScope mode;
    linear_forward<T>(c.rows, c.I, c.O, data<T>(c.x), data<T>(c.w), data<T>(c.b), yp, relu);
  }
  return std::move(y);
}

template <typename T>
py::tuple linear_backward_t(const LinearCall& c, bool ig, bool wg, bool bg) {
  py::object gx = py::none(), gw = py::none(), gb = py::none();
  T *gxp = nullptr, *gwp = nullptr, *gbp = nullptr;
  if (ig) { py::array_t<T> a(c.x_shape); gxp = a.mutable_data(); gx = a; }
  if (wg) { py::array_t<T> a(Shape{c.O, c.I}); gwp = a.mutable_data(); gw = a; }
  if (bg) { py::array_t<T> a(Shape{c.O}); gbp = a.mutable_data(); gb = a; }
  {
    py::gil_scoped_release release;
    const fastbp::DenormalScope mode;
    linear_backward<T>(c.rows, c.I, c.O, data<T>(c.gy), data<T>(c.x), data<T>(c.w), gxp, gwp,
                       gbp);
  }
  return py::make_tuple(gx, gw, gb);
}

py::array linear(py::handle input, py::handle weight, py::handle bias, py::handle activation) {
  const LinearCall c = check_linear("linear", input, weight, bias, py::handle());
  const bool relu = relu_activation("linear", activation);
  return c.kind == 'f' ? linear_t<float>(c, relu) : linear_t<double>(c, relu);
}

py::tuple linear_backward(py::handle grad_output, py::handle input, py::handle weight,
                          py::handle input_grad, py::handle weight_grad, py::handle bias_grad) {
  const char* op = "linear_backward";
  if (grad_output.is_none())
    type_error(std::string(op) + ": grad_output must be an array of float32 or float64, got None");
  const LinearCall c = check_linear(op, input, weight, py::none(), grad_output);
  const bool ig = flag_arg(op, "input_grad", input_grad),
             wg = flag_arg(op, "weight_grad", weight_grad),
             bg = flag_arg(op, "bias_grad", bias_grad);
  return c.kind == 'f' ? linear_backward_t<float>(c, ig, wg, bg)
                       : linear_backward_t<double>(c, ig, wg, bg);
}

}  // namespace

void register_linear(py::module_& m) {
  m.def("linear", &linear, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("activation") = py::none());
  m.def("linear_backward", &linear_backward, py::arg("grad_output"), py::arg("input"),
        py::arg("weight"), py::arg("input_grad"), py::arg("weight_grad"), py::arg("bias_grad"));
}

}  // namespace fastbp::bind
