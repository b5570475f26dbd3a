// engine/dtype.cpp: dtype names.
#include "engine/dtype.h"

namespace retort {

const char* dtype_name(DType t) {
    switch (t) {
        case DType::f32: return "float32";
        case DType::f64: return "float64";
        case DType::i32: return "int32";
        case DType::i64: return "int64";
    }
    return "unknown";
}

}  // namespace retort
