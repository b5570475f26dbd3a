// engine/cpu/complex.h: complex arithmetic for the FFT kernels, written out in real and imaginary
// parts.
//
// A complex tensor in retort is a real tensor whose last dim is 2: element k of a row is the pair
// (data[2k], data[2k + 1]) = (re, im), the layout of torch.view_as_real. load() and store() move
// one such pair in and out of a Complex value; the operators are the schoolbook formulas. Nothing
// here depends on std::complex, so every multiply and add the kernels do is visible on the page.
#pragma once

#include <cstdint>

namespace retort::cpu {

template <class T>
struct Complex {
    T re, im;
};

template <class T>
inline Complex<T> load(const T* data, std::int64_t k) {
    return {data[2 * k], data[2 * k + 1]};
}

template <class T>
inline void store(T* data, std::int64_t k, Complex<T> z) {
    data[2 * k] = z.re;
    data[2 * k + 1] = z.im;
}

template <class T>
inline Complex<T> operator+(Complex<T> a, Complex<T> b) {
    return {a.re + b.re, a.im + b.im};
}

template <class T>
inline Complex<T> operator-(Complex<T> a, Complex<T> b) {
    return {a.re - b.re, a.im - b.im};
}

template <class T>
inline Complex<T> operator*(Complex<T> a, Complex<T> b) {
    return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}

template <class T>
inline Complex<T> operator*(Complex<T> a, T s) {
    return {a.re * s, a.im * s};
}

template <class T>
inline Complex<T> conj(Complex<T> a) {
    return {a.re, -a.im};
}

// -i * dir * a: a quarter turn clockwise for dir = 1, counter-clockwise for dir = -1. The
// butterflies use it where the forward and inverse transforms differ only in a sign.
template <class T>
inline Complex<T> rotate_quarter(Complex<T> a, T dir) {
    return {dir * a.im, -dir * a.re};
}

}  // namespace retort::cpu
