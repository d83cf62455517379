// Argument checks for the Python entries (bind_*.cpp): Python objects in, checked values out,
// or a TypeError / ValueError whose message names the op, the argument and the sizes. The
// messages read as Python's own: shapes and values print as Python would print them.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fastbp::bind {
namespace py = pybind11;

using Shape = std::vector<int64_t>;

// Largest element count fastbp will try to allocate for one array (as fastbp.functional).
constexpr int64_t kMaxElements = (int64_t(1) << 62) / 8;

// An absent array (a null handle: false in `if (a)`); py::array() would be an empty array.
inline py::array no_array() { return py::reinterpret_steal<py::array>(py::handle()); }

[[noreturn]] void type_error(const std::string& msg);
[[noreturn]] void value_error(const std::string& msg);

std::string py_repr(py::handle value);          // Python's py_repr()
std::string tuple_repr(const Shape& values);  // "(2, 3)", "(5,)", "()"
Shape shape_of(const py::array& a);

// A float32/float64 array. A numpy array is used as it is; anything else goes through
// fastbp.functional._as_array (DLPack, buffer protocol, __array__, ...).
struct __attribute__((visibility("hidden"))) FloatArgs {
  const char* op;
  std::vector<std::pair<const char*, py::array>> given;  // in argument order, None left out
  char kind = 0;                                          // 'f' float32, 'd' float64

  explicit FloatArgs(const char* op_) : op(op_) {}
  // Converts and checks one argument; None is allowed only when `optional`.
  py::array add(const char* name, py::handle value, bool optional = false);
  // All given arrays share one dtype (TypeError listing them otherwise); returns its kind.
  char common_kind();
};

// An int or a sequence of n ints, each >= minimum (as fastbp.functional._int_tuple).
Shape int_tuple(const char* op, const char* name, py::handle value, int64_t n, int64_t minimum);
// A plain int (not a bool), e.g. groups.
int64_t int_arg(const char* op, const char* name, py::handle value);

// An epilogue: None -> false, "relu" -> true, anything else a ValueError.
bool relu_activation(const char* op, py::handle activation);

// bool(value), as Python's if would take it; a value without one truth value (an array of
// several elements) is a TypeError naming the argument.
bool flag_arg(const char* op, const char* name, py::handle value);

// ValueError when the product of `shape` exceeds kMaxElements.
void check_size(const char* op, const char* what, const Shape& shape);

// C-contiguous and aligned: `a` itself when it already is, else a copy.
py::array dense(const py::array& a);

// The data of an array the caller has checked to hold T; null for an absent one.
template <typename T>
const T* data(const py::array& a) {
  return a ? static_cast<const T*>(a.data()) : nullptr;
}

}  // namespace fastbp::bind
