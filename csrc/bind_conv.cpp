// Python entries of conv1d / conv2d forward and backward: the one place their arguments are
// checked (the semantics and messages of torch.nn.functional), then the kernels, GIL released.
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>

#include "bind_args.h"
#include "conv.h"
#include "parallel.h"

namespace fastbp::bind {
namespace {

struct ConvCall {
  ConvParams p{};
  char kind = 0;
  py::array x = no_array(), w = no_array(), b = no_array(), gy = no_array();  // dense; b, gy may be absent
  Shape x_shape, w_shape, y_shape;  // as the caller gave them (unbatched, 1-d)
};

std::string shape_str(const py::array& a) { return tuple_repr(shape_of(a)); }

ConvCall check_conv(const char* op, int nd, py::handle input, py::handle weight,
                    py::handle bias, py::handle stride_arg, py::handle padding_arg,
                    py::handle dilation_arg, py::handle groups_arg, py::handle grad_output) {
  const std::string pre = std::string(op) + ": ";
  FloatArgs args(op);
  py::array x = args.add("input", input);
  py::array w = args.add("weight", weight);
  py::array b = args.add("bias", bias, true);
  py::array gy = grad_output ? args.add("grad_output", grad_output) : no_array();
  ConvCall call;
  call.kind = args.common_kind();
  if (x.ndim() != nd + 1 && x.ndim() != nd + 2)
    value_error(pre + "input must be " + std::to_string(nd + 1) + " or " + std::to_string(nd + 2) +
                "-d (batched or unbatched), got shape " + shape_str(x));
  if (w.ndim() != nd + 2)
    value_error(pre + "weight must be " + std::to_string(nd + 2) +
                "-d (out_channels, in_channels/groups, " + (nd == 2 ? "kH, kW" : "kW") +
                "), got shape " + shape_str(w));
  const bool unbatched = x.ndim() == nd + 1;
  const int64_t groups = int_arg(op, "groups", groups_arg);
  if (groups < 1) value_error(pre + "groups must be >= 1, got " + std::to_string(groups));
  Shape xs = shape_of(x);
  if (unbatched) xs.insert(xs.begin(), 1);
  const int64_t N = xs[0], C = xs[1], O = w.shape(0), Cg = w.shape(1);
  if (C % groups || O % groups)
    value_error(pre + "groups=" + std::to_string(groups) + " must divide in_channels=" +
                std::to_string(C) + " (input shape " + shape_str(x) + ") and out_channels=" +
                std::to_string(O) + " (weight shape " + shape_str(w) + ")");
  if (Cg * groups != C)
    value_error(pre + "input has " + std::to_string(C) + " channels (shape " + shape_str(x) +
                ") but weight expects in_channels/groups=" + std::to_string(Cg) + " x groups=" +
                std::to_string(groups) + " = " + std::to_string(Cg * groups) + " (weight shape " +
                shape_str(w) + ")");
  if (b && (b.ndim() != 1 || b.shape(0) != O))
    value_error(pre + "bias must have shape (" + std::to_string(O) + ",) to match weight " +
                shape_str(w) + ", got " + shape_str(b));
  const Shape stride = int_tuple(op, "stride", stride_arg, nd, 1);
  const Shape dilation = int_tuple(op, "dilation", dilation_arg, nd, 1);
  const Shape ksize(w.shape() + 2, w.shape() + w.ndim());
  std::vector<std::pair<int64_t, int64_t>> pads;
  if (PyUnicode_Check(padding_arg.ptr())) {
    const std::string mode = padding_arg.cast<std::string>();
    if (mode == "valid") {
      pads.assign(nd, {0, 0});
    } else if (mode == "same") {
      if (std::any_of(stride.begin(), stride.end(), [](int64_t s) { return s != 1; }))
        value_error(pre + "padding='same' is not supported for strided convolutions, got stride=" +
                    tuple_repr(stride));
      for (int i = 0; i < nd; ++i) {
        const int64_t total = dilation[i] * (ksize[i] - 1);
        pads.push_back({total / 2, total - total / 2});
      }
    } else {
      value_error(pre + "padding must be 'valid', 'same', an int or a tuple of " +
                  std::to_string(nd) + " ints, got " + py_repr(padding_arg));
    }
  } else {
    for (int64_t v : int_tuple(op, "padding", padding_arg, nd, 0)) pads.push_back({v, v});
  }
  Shape out;
  for (int i = 0; i < nd; ++i) {
    const int64_t size = xs[2 + i], span = dilation[i] * (ksize[i] - 1) + 1;
    const int64_t p0 = pads[i].first, p1 = pads[i].second;
    if (ksize[i] < 1 || size + p0 + p1 < span)
      value_error(pre + "kernel size " + tuple_repr(ksize) + " with dilation " +
                  tuple_repr(dilation) + " spans " + std::to_string(span) + " on spatial axis " +
                  std::to_string(i) + ", larger than the padded input (" + std::to_string(size) +
                  " + padding " + std::to_string(p0 + p1) + "); input shape " + shape_str(x));
    out.push_back((size + p0 + p1 - span) / stride[i] + 1);
  }
  Shape out_shape{N, O};
  out_shape.insert(out_shape.end(), out.begin(), out.end());
  check_size(op, "output", out_shape);
  int64_t taps = 1, pixels = 1;
  for (int i = 0; i < nd; ++i) taps *= ksize[i], pixels *= out[i];
  check_size(op, "column buffer", {Cg * taps, pixels + 1024});
  call.y_shape = out_shape;
  if (unbatched) call.y_shape.erase(call.y_shape.begin());
  if (gy && shape_of(gy) != call.y_shape)
    value_error(pre + "grad_output must have shape " + tuple_repr(call.y_shape) +
                " (the output of input " + shape_str(x) + " and weight " + shape_str(w) +
                "), got " + shape_str(gy));

  // the kernels see 2-d, batched geometry: 1-d is height 1
  ConvParams& p = call.p;
  const int h = nd == 2 ? 0 : -1;  // index of the height axis in the per-axis values, if any
  p.N = N; p.C = C; p.O = O; p.groups = groups;
  p.H = h < 0 ? 1 : xs[2]; p.W = xs[2 + nd - 1];
  p.kh = h < 0 ? 1 : ksize[0]; p.kw = ksize[nd - 1];
  p.sh = h < 0 ? 1 : stride[0]; p.sw = stride[nd - 1];
  p.dh = h < 0 ? 1 : dilation[0]; p.dw = dilation[nd - 1];
  p.ph = h < 0 ? 0 : pads[0].first; p.pw = pads[nd - 1].first;
  p.Ho = h < 0 ? 1 : out[0]; p.Wo = out[nd - 1];
  call.x = dense(x);
  call.w = dense(w);
  if (b) call.b = dense(b);
  if (gy) call.gy = dense(gy);
  call.x_shape = shape_of(x);
  call.w_shape = shape_of(w);
  return call;
}

template <typename T>
py::array conv_forward_t(const ConvCall& c, bool relu) {
  py::array_t<T> y(c.y_shape);
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    const fastbp::DenormalScope mode;
    conv2d_forward<T>(c.p, data<T>(c.x), data<T>(c.w), data<T>(c.b), yp, relu);
  }
  return std::move(y);
}

template <typename T>
py::tuple conv_backward_t(const ConvCall& c, bool ig, bool wg, bool bg) {
  py::object gx = py::none(), gw = py::none(), gb = py::none();
  T *gxp = nullptr, *gwp = nullptr, *gbp = nullptr;
  if (ig) { py::array_t<T> a(c.x_shape); gxp = a.mutable_data(); gx = a; }
  if (wg) { py::array_t<T> a(c.w_shape); gwp = a.mutable_data(); gw = a; }
  if (bg) { py::array_t<T> a(Shape{c.p.O}); gbp = a.mutable_data(); gb = a; }
  {
    py::gil_scoped_release release;
    const fastbp::DenormalScope mode;
    conv2d_backward<T>(c.p, data<T>(c.gy), data<T>(c.x), data<T>(c.w), gxp, gwp, gbp);
  }
  return py::make_tuple(gx, gw, gb);
}

py::array conv(const char* op, int nd, py::handle input, py::handle weight, py::handle bias,
               py::handle stride, py::handle padding, py::handle dilation, py::handle groups,
               py::handle activation) {
  const ConvCall c = check_conv(op, nd, input, weight, bias, stride, padding, dilation, groups,
                                py::handle());
  const bool relu = relu_activation(op, activation);
  return c.kind == 'f' ? conv_forward_t<float>(c, relu) : conv_forward_t<double>(c, relu);
}

py::tuple conv_backward(const char* op, int nd, py::handle grad_output, py::handle input,
                        py::handle weight, py::handle stride, py::handle padding,
                        py::handle dilation, py::handle groups, py::handle input_grad,
                        py::handle weight_grad, py::handle bias_grad) {
  if (grad_output.is_none())
    type_error(std::string(op) + ": grad_output must be an array of float32 or float64, got None");
  const ConvCall c = check_conv(op, nd, input, weight, py::none(), stride, padding, dilation,
                                groups, grad_output);
  const bool ig = flag_arg(op, "input_grad", input_grad),
             wg = flag_arg(op, "weight_grad", weight_grad),
             bg = flag_arg(op, "bias_grad", bias_grad);
  return c.kind == 'f' ? conv_backward_t<float>(c, ig, wg, bg)
                       : conv_backward_t<double>(c, ig, wg, bg);
}

// The algorithm the forward of this call would run (tests, and users who ask).
std::string conv_algorithm(const char* op, int nd, py::handle input, py::handle weight,
                           py::handle stride, py::handle padding, py::handle dilation,
                           py::handle groups, bool weight_grad) {
  const ConvCall c = check_conv(op, nd, input, weight, py::none(), stride, padding, dilation,
                                groups, py::handle());
  if (weight_grad)
    return c.kind == 'f' ? conv2d_weight_grad_algorithm<float>(c.p)
                         : conv2d_weight_grad_algorithm<double>(c.p);
  return c.kind == 'f' ? conv2d_forward_algorithm<float>(c.p)
                       : conv2d_forward_algorithm<double>(c.p);
}

}  // namespace

void register_conv(py::module_& m) {
  m.def("conv", &conv, py::arg("op"), py::arg("nd"), py::arg("input"), py::arg("weight"),
        py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("activation") = py::none());
  m.def("conv_backward", &conv_backward, py::arg("op"), py::arg("nd"), py::arg("grad_output"),
        py::arg("input"), py::arg("weight"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("groups"), py::arg("input_grad"), py::arg("weight_grad"),
        py::arg("bias_grad"));
  m.def("conv_algorithm", &conv_algorithm, py::arg("op"), py::arg("nd"), py::arg("input"),
        py::arg("weight"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("weight_grad") = false);
}

}  // namespace fastbp::bind
