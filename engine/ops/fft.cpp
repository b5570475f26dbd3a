// engine/ops/fft.cpp: fft2, ifft2, rfft2, irfft2 over the last two dims; complex_abs and
// complex_angle.
// Shapes: ... batch dims (flattened to B for the kernels), H rows, W columns, K = W / 2 + 1,
// and a last dim of 2 = (real, imaginary) on complex tensors:
//   fft2, ifft2 (..., H, W, 2) -> (..., H, W, 2);  rfft2 (..., H, W) -> (..., H, K, 2);
//   irfft2 (..., H, K, 2) -> (..., H, W);  complex_abs, complex_angle (..., 2) -> (...).
// Matches torch.fft.fft2 / ifft2 / rfft2 / irfft2(s=(H, W)) with norm = "backward", "ortho" or
// "forward", and torch.abs / torch.angle, on torch.view_as_complex(x), with view_as_real outputs.
//
// Backward: the transforms are linear, so each gradient is the adjoint transform applied to the
// output's gradient, and nothing is saved but the sizes and the scale.
//   fft2 / ifft2: the adjoint of a DFT is the DFT in the other direction with the same scale, i.e.
//     ifft2 / fft2 with the dual norm (backward <-> forward, ortho stays ortho).
//   rfft2 keeps the first K columns of a real signal's DFT; its adjoint pads the gradient with
//     zeros to W columns, runs the inverse DFT with the same scale and keeps the real part.
//   irfft2 is the real part of the inverse DFT of the spectrum, zero-padded to W columns, with
//     columns 1 .. W - K doubled (each stands for its mirror image too); its adjoint runs the
//     forward real DFT on the gradient and doubles the same columns. This is PyTorch's gradient
//     as well, and it counts the imaginary parts of columns 0 and W / 2 exactly as the forward
//     pass does (after the transform over H they are dropped with the real part).
//   complex_abs saves z and |z| (dz = g z / |z|); complex_angle saves z
//     (dz = g (-im, re) / |z|^2); both define the gradient as 0 at z = 0, where it does not
//     exist, as PyTorch does.
// Arithmetic: engine/cpu/fft2.h (rows, then columns) over engine/cpu/fft_plan.h (1-D FFTs); on a
// GPU, cuFFT (engine/cuda/fft.h) with the elementwise steps of engine/kernels/fft.h, which also
// compute complex_abs and complex_angle on both devices.
#include "engine/ops/fft.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/cpu/fft2.h"
#include "engine/cuda/fft.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/elementwise.h"
#include "engine/kernels/fft.h"

namespace retort {

FftNorm parse_fft_norm(const std::string& name) {
    for (FftNorm norm : {FftNorm::backward, FftNorm::ortho, FftNorm::forward})
        if (name == fft_norm_name(norm)) return norm;
    fail("fft norm: unknown norm \"", name, "\"; expected one of backward, ortho, forward");
}

const char* fft_norm_name(FftNorm norm) {
    switch (norm) {
        case FftNorm::backward: return "backward";
        case FftNorm::ortho: return "ortho";
        case FftNorm::forward: return "forward";
    }
    return "?";
}

namespace {

// ---- norms ----

// The norm whose inverse scale equals this norm's forward scale (and the other way round).
FftNorm dual(FftNorm norm) {
    if (norm == FftNorm::backward) return FftNorm::forward;
    if (norm == FftNorm::forward) return FftNorm::backward;
    return FftNorm::ortho;
}

double forward_scale(FftNorm norm, std::int64_t points) {
    const double n = static_cast<double>(points);
    if (norm == FftNorm::ortho) return 1 / std::sqrt(n);
    return norm == FftNorm::forward ? 1 / n : 1.0;
}

double inverse_scale(FftNorm norm, std::int64_t points) {
    return forward_scale(dual(norm), points);
}

// ---- argument checks ----

void check_float(const Tensor& x, const char* op) {
    require(x.defined(), op, ": undefined tensor argument");
    require(is_floating(x.dtype()), op, ": expected a float32 or float64 tensor, got ",
            dtype_name(x.dtype()));
}

// Batch, H and W of a signal whose H is dim `height_dim` of `shape`.
cpu::Fft2Size signal_size(const Shape& shape, int height_dim, const char* op) {
    std::int64_t batch = 1;
    for (int d = 0; d < height_dim; ++d) batch *= shape[d];
    const std::int64_t h = shape[height_dim], w = shape[height_dim + 1];
    require(h >= 1 && w >= 1, op, ": cannot transform an empty signal (H = ", h, ", W = ", w,
            ") in shape ", shape_str(shape));
    return {batch, h, w};
}

// A complex input (..., H, W, 2).
cpu::Fft2Size complex_signal(const Tensor& x, const char* op) {
    check_float(x, op);
    require(x.dim() >= 3, op, ": expected a complex tensor (..., H, W, 2) of at least 3 dims, ",
            "got shape ", shape_str(x.shape()));
    require(x.size(-1) == 2, op, ": expected a last dim of 2 (real, imaginary), got shape ",
            shape_str(x.shape()));
    return signal_size(x.shape(), x.dim() - 3, op);
}

// A real input (..., H, W).
cpu::Fft2Size real_signal(const Tensor& x, const char* op) {
    check_float(x, op);
    require(x.dim() >= 2, op, ": expected a real tensor (..., H, W) of at least 2 dims, got shape ",
            shape_str(x.shape()));
    return signal_size(x.shape(), x.dim() - 2, op);
}

// Complex values (..., 2) for complex_abs and complex_angle.
void check_complex_values(const Tensor& z, const char* op) {
    check_float(z, op);
    require(z.dim() >= 1 && z.size(-1) == 2, op, ": expected a complex tensor (..., 2) with a ",
            "last dim of 2 (real, imaginary), got shape ", shape_str(z.shape()));
}

// ---- kernel calls, without graph nodes (the backward closures use them too) ----

// scale * z, in place, on z's device.
void scale_in_place(Tensor& z, double scale) {
    if (scale == 1.0) return;
    visit_floating(z.dtype(), "fft2", [&]<class T>(Type<T>) {
        run(z.device(), z.numel(), kernels::Scale<T>{z.device_data<T>(), static_cast<T>(scale)});
    });
}

Tensor complex_transform(const Tensor& x, cpu::Fft2Size size, bool inverse, double scale) {
    if (x.device().is_cuda()) {  // cuFFT, unnormalized, then the norm's scale
        Tensor out = x.detach().clone();
        cuda::fft2_complex(x.device(), x.dtype(), out.raw_device_data(), size.batch, size.height,
                           size.width, inverse);
        scale_in_place(out, scale);
        return out;
    }
    Tensor out = Tensor::empty(x.shape(), x.dtype());
    visit_floating(x.dtype(), "fft2", [&]<class T>(Type<T>) {
        std::copy(x.data<T>(), x.data<T>() + x.numel(), out.data<T>());
        cpu::fft2_complex(out.data<T>(), size, inverse, scale);
    });
    return out;
}

kernels::HalfSpectrum half_spectrum(cpu::Fft2Size size) {
    return {size.height, size.half_width(), size.width};
}

// x (..., H, W) -> (..., H, K, 2)
Tensor to_half_spectrum(const Tensor& x, cpu::Fft2Size size, double scale, bool double_mirrored) {
    Shape shape = x.shape();
    shape.back() = size.half_width();
    shape.push_back(2);
    Tensor out = Tensor::empty(shape, x.dtype(), x.device());
    if (x.device().is_cuda()) {
        const Tensor scratch = x.detach().clone();  // cuFFT may overwrite its real input
        cuda::fft2_real_to_half(x.device(), x.dtype(), scratch.raw_device_data(),
                                out.raw_device_data(), size.batch, size.height, size.width);
        if (scale != 1.0 || double_mirrored)
            visit_floating(x.dtype(), "rfft2", [&]<class T>(Type<T>) {
                cuda::launch(x.device(), out.numel(),
                             kernels::HalfSpectrumScale<T>{out.device_data<T>(),
                                                           half_spectrum(size),
                                                           static_cast<T>(scale), double_mirrored});
            });
        return out;
    }
    visit_floating(x.dtype(), "rfft2", [&]<class T>(Type<T>) {
        cpu::real_to_half(x.data<T>(), out.data<T>(), size, scale, double_mirrored);
    });
    return out;
}

// z (..., H, K, 2) -> (..., H, W)
Tensor from_half_spectrum(const Tensor& z, cpu::Fft2Size size, double scale, bool double_mirrored) {
    Shape shape = z.shape();
    shape.pop_back();
    shape.back() = size.width;
    Tensor out = Tensor::empty(shape, z.dtype(), z.device());
    if (z.device().is_cuda()) {  // the real part of the inverse DFT of the padded spectrum
        Tensor full = Tensor::empty({size.batch, size.height, size.width, 2}, z.dtype(), z.device());
        visit_floating(z.dtype(), "irfft2", [&]<class T>(Type<T>) {
            cuda::launch(z.device(), full.numel(),
                         kernels::PadHalfSpectrum<T>{z.device_data<T>(), full.device_data<T>(),
                                                     half_spectrum(size), double_mirrored});
            cuda::fft2_complex(z.device(), z.dtype(), full.raw_device_data(), size.batch,
                               size.height, size.width, /*inverse=*/true);
            cuda::launch(z.device(), out.numel(),
                         kernels::RealPart<T>{full.device_data<T>(), out.device_data<T>(),
                                              static_cast<T>(scale)});
        });
        return out;
    }
    visit_floating(z.dtype(), "irfft2", [&]<class T>(Type<T>) {
        cpu::half_to_real(z.data<T>(), out.data<T>(), size, scale, double_mirrored);
    });
    return out;
}

}  // namespace

// ---- the transforms ----

Tensor fft2(const Tensor& x, FftNorm norm) {
    const cpu::Fft2Size size = complex_signal(x, "fft2");
    Tensor out = complex_transform(x, size, /*inverse=*/false,
                                   forward_scale(norm, size.height * size.width));
    record(out, "fft2", {x}, [norm](const Tensor& g) {
        return std::vector<Tensor>{ifft2(g, dual(norm))};
    });
    return out;
}

Tensor ifft2(const Tensor& x, FftNorm norm) {
    const cpu::Fft2Size size = complex_signal(x, "ifft2");
    Tensor out = complex_transform(x, size, /*inverse=*/true,
                                   inverse_scale(norm, size.height * size.width));
    record(out, "ifft2", {x}, [norm](const Tensor& g) {
        return std::vector<Tensor>{fft2(g, dual(norm))};
    });
    return out;
}

Tensor rfft2(const Tensor& x, FftNorm norm) {
    const cpu::Fft2Size size = real_signal(x, "rfft2");
    const double scale = forward_scale(norm, size.height * size.width);
    Tensor out = to_half_spectrum(x, size, scale, /*double_mirrored=*/false);
    record(out, "rfft2", {x}, [size, scale](const Tensor& g) {
        return std::vector<Tensor>{from_half_spectrum(g, size, scale, /*double_mirrored=*/false)};
    });
    return out;
}

Tensor irfft2(const Tensor& x, std::int64_t width, FftNorm norm) {
    cpu::Fft2Size size = complex_signal(x, "irfft2");
    require(width >= 1, "irfft2: the output width must be at least 1, got ", width);
    require(size.width == width / 2 + 1, "irfft2: an output width of ", width, " needs ",
            width / 2 + 1, " complex columns (width / 2 + 1), but the input of shape ",
            shape_str(x.shape()), " has ", size.width);
    size.width = width;
    const double scale = inverse_scale(norm, size.height * size.width);
    Tensor out = from_half_spectrum(x, size, scale, /*double_mirrored=*/true);
    record(out, "irfft2", {x}, [size, scale](const Tensor& g) {
        return std::vector<Tensor>{to_half_spectrum(g, size, scale, /*double_mirrored=*/true)};
    });
    return out;
}

// ---- magnitude and phase ----

Tensor complex_abs(const Tensor& z) {
    check_complex_values(z, "complex_abs");
    Shape shape = z.shape();
    shape.pop_back();
    Tensor out = Tensor::empty(shape, z.dtype(), z.device());
    visit_floating(z.dtype(), "complex_abs", [&]<class T>(Type<T>) {
        run(z.device(), out.numel(), kernels::ComplexAbs<T>{z.device_data<T>(), out.device_data<T>()});
    });
    record(out, "complex_abs", {z}, [sz = z.detach(), sy = out.detach()](const Tensor& g) {
        Tensor dz = Tensor::empty(sz.shape(), g.dtype(), g.device());
        visit_floating(g.dtype(), "complex_abs backward", [&]<class T>(Type<T>) {
            run(g.device(), g.numel(),
                kernels::ComplexAbsBackward<T>{sz.device_data<T>(), sy.device_data<T>(),
                                               g.device_data<T>(), dz.device_data<T>()});
        });
        return std::vector<Tensor>{dz};
    });
    return out;
}

Tensor complex_angle(const Tensor& z) {
    check_complex_values(z, "complex_angle");
    Shape shape = z.shape();
    shape.pop_back();
    Tensor out = Tensor::empty(shape, z.dtype(), z.device());
    visit_floating(z.dtype(), "complex_angle", [&]<class T>(Type<T>) {
        run(z.device(), out.numel(),
            kernels::ComplexAngle<T>{z.device_data<T>(), out.device_data<T>()});
    });
    record(out, "complex_angle", {z}, [sz = z.detach()](const Tensor& g) {
        Tensor dz = Tensor::empty(sz.shape(), g.dtype(), g.device());
        visit_floating(g.dtype(), "complex_angle backward", [&]<class T>(Type<T>) {
            run(g.device(), g.numel(),
                kernels::ComplexAngleBackward<T>{sz.device_data<T>(), g.device_data<T>(),
                                                 dz.device_data<T>()});
        });
        return std::vector<Tensor>{dz};
    });
    return out;
}

}  // namespace retort
