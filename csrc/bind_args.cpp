#include "bind_args.h"

namespace fastbp::bind {

void type_error(const std::string& msg) { throw py::type_error(msg); }
void value_error(const std::string& msg) { throw py::value_error(msg); }

std::string py_repr(py::handle value) { return py::repr(value).cast<std::string>(); }

std::string tuple_repr(const Shape& values) {
  std::string s = "(";
  for (size_t i = 0; i < values.size(); ++i) s += (i ? ", " : "") + std::to_string(values[i]);
  return s + (values.size() == 1 ? ",)" : ")");
}

Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

py::array FloatArgs::add(const char* name, py::handle value, bool optional) {
  if (value.is_none()) {
    if (!optional)
      type_error(std::string(op) + ": " + name + " must be an array of float32 or float64, got None");
    return no_array();
  }
  py::array a;
  if (Py_TYPE(value.ptr()) == py::detail::npy_api::get().PyArray_Type_) {  // exactly ndarray
    a = py::reinterpret_borrow<py::array>(value);
  } else {
    a = py::module_::import("fastbp.functional").attr("_as_array")(op, name, value);
  }
  const auto f32 = py::dtype::of<float>(), f64 = py::dtype::of<double>();
  if (!a.dtype().equal(f32) && !a.dtype().equal(f64))
    type_error(std::string(op) + ": " + name + " must be float32 or float64, got dtype " +
               py::str(a.dtype()).cast<std::string>());
  given.emplace_back(name, a);
  return a;
}

char FloatArgs::common_kind() {
  const auto f32 = py::dtype::of<float>();
  bool any32 = false, any64 = false;
  for (auto& [name, a] : given) (a.dtype().equal(f32) ? any32 : any64) = true;
  if (any32 && any64) {
    std::string listed;
    for (auto& [name, a] : given)
      listed += (listed.empty() ? "" : ", ") + std::string(name) + "=" +
                py::str(a.dtype()).cast<std::string>();
    type_error(std::string(op) + ": all arrays must share one dtype, got " + listed);
  }
  kind = any64 ? 'd' : 'f';
  return kind;
}

namespace {
bool is_bool(py::handle v) {
  if (PyBool_Check(v.ptr())) return true;
  static PyObject* np_bool = py::object(py::module_::import("numpy").attr("bool_")).release().ptr();
  return PyObject_IsInstance(v.ptr(), np_bool) == 1;
}
}  // namespace

Shape int_tuple(const char* op, const char* name, py::handle value, int64_t n, int64_t minimum) {
  const std::string prefix = std::string(op) + ": " + name;
  std::vector<py::handle> items;
  if (PyTuple_Check(value.ptr()) || PyList_Check(value.ptr())) {
    for (py::handle item : py::reinterpret_borrow<py::sequence>(value)) items.push_back(item);
    if (static_cast<int64_t>(items.size()) != n)
      value_error(prefix + " must be an int or a sequence of " + std::to_string(n) +
                  " ints, got " + py_repr(value));
  } else {
    items.assign(n, value);
  }
  Shape result;
  for (py::handle item : items) {
    if (is_bool(item)) type_error(prefix + " must contain ints, got " + py_repr(value));
    PyObject* index = PyNumber_Index(item.ptr());
    if (!index) {
      PyErr_Clear();
      type_error(prefix + " must contain ints, got " + py_repr(value));
    }
    py::object v = py::reinterpret_steal<py::object>(index);
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow < 0 || (!overflow && x < minimum))
      value_error(prefix + " must be >= " + std::to_string(minimum) + ", got " + py_repr(value));
    if (overflow > 0 || x > kMaxElements)
      value_error(prefix + " is too large (" + py::str(v).cast<std::string>() + " > " +
                  std::to_string(kMaxElements) + "), got " + py_repr(value));
    result.push_back(x);
  }
  return result;
}

int64_t int_arg(const char* op, const char* name, py::handle value) {
  const std::string msg = std::string(op) + ": " + name + " must be an int, got " + py_repr(value);
  if (is_bool(value)) type_error(msg);
  PyObject* index = PyNumber_Index(value.ptr());
  if (!index) {
    PyErr_Clear();
    type_error(msg);
  }
  py::object v = py::reinterpret_steal<py::object>(index);
  int overflow = 0;
  const long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
  if (overflow < 0) return INT64_MIN;  // callers reject values below their minimum
  if (overflow > 0) return INT64_MAX;
  return x;
}

bool relu_activation(const char* op, py::handle activation) {
  if (activation.is_none()) return false;
  if (PyUnicode_Check(activation.ptr()) && activation.cast<std::string>() == "relu") return true;
  value_error(std::string(op) + ": activation must be None or 'relu', got " + py_repr(activation));
}

bool flag_arg(const char* op, const char* name, py::handle value) {
  const int t = PyObject_IsTrue(value.ptr());
  if (t < 0) {
    PyErr_Clear();
    type_error(std::string(op) + ": " + name + " must be a bool, got " + py_repr(value));
  }
  return t == 1;
}

void check_size(const char* op, const char* what, const Shape& shape) {
  int64_t count = 1;
  bool over = false;
  for (int64_t s : shape) {
    if (s != 0 && count > kMaxElements / s) over = true;
    count = over ? count : count * s;
  }
  if (!over && count <= kMaxElements) return;
  for (int64_t s : shape)
    if (s == 0) return;
  py::int_ exact(1);  // the count as Python would print it, however large
  for (int64_t s : shape) exact = py::int_(exact * py::int_(s));
  value_error(std::string(op) + ": " + what + " of shape " + tuple_repr(shape) + " has " +
              py::str(exact).cast<std::string>() +
              " elements, which overflows what fastbp can address");
}

py::array dense(const py::array& a) {
  constexpr int kAligned = py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if ((a.flags() & py::array::c_style) && (a.flags() & kAligned)) return a;
  return py::array::ensure(a, py::array::c_style | kAligned);
}

}  // namespace fastbp::bind

namespace fastbp::bind {

void register_args(py::module_& m) {
  // What the kernels read for an array argument: tests check that it is the caller's memory
  // when that memory is already a dense float32/float64 array.
  m.def("kernel_view", [](const char* op, const char* name, py::handle value) {
    FloatArgs args(op);
    return dense(args.add(name, value));
  }, py::arg("op"), py::arg("name"), py::arg("value"));
}

}  // namespace fastbp::bind
