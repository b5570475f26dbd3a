// tests/test_shape_ops.cpp: permute, transpose, concat, stack, narrow, split, index_select,
// gather, scatter_add and pad. Forward against reference loops over coordinates (and PyTorch
// fixtures for pad and gather); backward by gradient checks in float64; every error message.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>

#include "engine/engine.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::Fixture;
using retort::testing::gradcheck;
using retort::testing::leaf;
using retort::testing::max_abs_diff;

namespace {

using Coords = std::vector<std::int64_t>;

Coords coords_of(std::int64_t flat, const Shape& shape) {
    Coords c(shape.size());
    for (std::size_t i = shape.size(); i-- > 0;) {
        c[i] = flat % shape[i];
        flat /= shape[i];
    }
    return c;
}

std::int64_t flat_of(const Coords& c, const Shape& shape) {
    std::int64_t flat = 0;
    for (std::size_t i = 0; i < shape.size(); ++i) flat = flat * shape[i] + c[i];
    return flat;
}

// Distinct values 0, 1, 2, ... in the given dtype, so any misplaced element shows.
Tensor iota(const Shape& shape, DType dtype) {
    return arange(0.0, static_cast<double>(shape_numel(shape)), 1.0, dtype).reshape(shape);
}

std::vector<double> permute_reference(const Tensor& x, const Coords& order) {
    Shape out_shape;
    for (auto d : order) out_shape.push_back(x.shape()[d]);
    std::vector<double> xv = x.to_vector<double>(), r;
    for (std::int64_t i = 0; i < shape_numel(out_shape); ++i) {
        Coords oc = coords_of(i, out_shape), ic(order.size());
        for (std::size_t k = 0; k < order.size(); ++k) ic[order[k]] = oc[k];
        r.push_back(xv[flat_of(ic, x.shape())]);
    }
    return r;
}

// Returns a weighted sum of several outputs, so one gradcheck covers ops with many results.
Tensor combine(const std::vector<Tensor>& pieces) {
    Tensor total;
    double weight = 1;
    for (const Tensor& p : pieces) {
        Tensor term = sum(p) * weight;
        total = total.defined() ? total + term : term;
        weight += 1;
    }
    return total;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("shape_ops: permute matches index arithmetic for every order and dtype") {
    const Shape shape{2, 3, 4, 5};
    Coords order{0, 1, 2, 3};
    do {
        for (DType dt : {DType::f32, DType::f64, DType::i32, DType::i64}) {
            Tensor x = iota(shape, dt);
            Tensor y = permute(x, order);
            CHECK(y.dtype() == dt);
            CHECK(y.to_vector<double>() == permute_reference(x, order));
        }
    } while (std::next_permutation(order.begin(), order.end()));
}

TEST_CASE("shape_ops: permute of larger maps (tiled path, partial tiles, size-1 dims)") {
    const std::vector<std::pair<Shape, Coords>> cases = {
        {{70, 45}, {1, 0}},          {{3, 37, 65}, {0, 2, 1}}, {{5, 33, 70}, {2, 0, 1}},
        {{2, 40, 1, 50}, {3, 2, 0, 1}}, {{1, 1, 64}, {2, 1, 0}}, {{4, 1, 3}, {1, 2, 0}},
        {{2, 3, 40, 40}, {0, 2, 3, 1}}, {{}, {}},               {{0, 3}, {1, 0}}};
    for (auto& [shape, order] : cases) {
        Tensor x = iota(shape, DType::f32);
        Tensor y = permute(x, order);
        CHECK(y.to_vector<double>() == permute_reference(x, order));
    }
}

TEST_CASE("shape_ops: permute and transpose gradients") {
    CHECK(gradcheck([](auto& in) { return permute(in[0], {2, 0, 1}); }, {leaf({2, 3, 5}, 1)}));
    CHECK(gradcheck([](auto& in) { return permute(in[0], {-1, 0, 2, 1}); }, {leaf({1, 3, 1, 2}, 2)}));
    CHECK(gradcheck([](auto& in) { return transpose(in[0], 0, -1); }, {leaf({3, 1, 4}, 3)}));
    Tensor x = iota({2, 3, 4}, DType::i64);
    CHECK(transpose(x, 1, 2).to_vector<double>() == permute_reference(x, {0, 2, 1}));
    CHECK(transpose(x, 1, 1).to_vector<double>() == x.to_vector<double>());
}

TEST_CASE("shape_ops: permute and transpose errors") {
    Tensor x = zeros({2, 3, 4});
    CHECK_THROWS_WITH_AS(permute(x, {0, 0, 1}),
                         doctest::Contains("permute: order (0, 0, 1) is not a permutation of the 3 dims of shape (2, 3, 4)"),
                         Error);
    CHECK_THROWS_WITH_AS(permute(x, {0, 1}), doctest::Contains("permute: order (0, 1) is not"), Error);
    CHECK_THROWS_WITH_AS(permute(x, {0, 1, 3}), doctest::Contains("not a permutation"), Error);
    CHECK_THROWS_WITH_AS(transpose(x, 0, 3), doctest::Contains("transpose: dim 3 is out of range"),
                         Error);
}

TEST_CASE("shape_ops: concat and stack forward, any dtype") {
    Tensor a = iota({2, 1, 3}, DType::i64), b = iota({2, 2, 3}, DType::i64) + 100.0;
    Tensor c = concat({a, b}, 1);
    REQUIRE(c.shape() == Shape{2, 3, 3});
    std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
    for (std::int64_t i = 0; i < c.numel(); ++i) {
        Coords k = coords_of(i, c.shape());
        double expected = k[1] < 1 ? av[flat_of(k, a.shape())]
                                   : bv[flat_of({k[0], k[1] - 1, k[2]}, b.shape())];
        CHECK(c.to_vector<double>()[i] == expected);
    }
    CHECK(concat({a, b}, -2).to_vector<double>() == c.to_vector<double>());
    CHECK(concat({a}, 0).to_vector<double>() == av);
    Tensor empty = zeros({2, 0, 3}, DType::i64);
    CHECK(concat({empty, a, empty}, 1).to_vector<double>() == av);

    Tensor p = iota({2, 3}, DType::f32), q = iota({2, 3}, DType::f32) * 10.0;
    Tensor s = stack({p, q}, 1);
    REQUIRE(s.shape() == Shape{2, 2, 3});
    CHECK(s.to_vector<double>() == std::vector<double>{0, 1, 2, 0, 10, 20, 3, 4, 5, 30, 40, 50});
    CHECK(stack({p, q}, -1).shape() == Shape{2, 3, 2});
    CHECK(stack({p, q}, 0).to_vector<double>() == concat({p, q}, 0).to_vector<double>());
}

TEST_CASE("shape_ops: concat and stack gradients") {
    CHECK(gradcheck([](auto& in) { return concat({in[0], in[1], in[2]}, 1); },
                    {leaf({2, 3, 2}, 1), leaf({2, 1, 2}, 2), leaf({2, 4, 2}, 3)}));
    CHECK(gradcheck([](auto& in) { return concat({in[0], in[1]}, 0); },
                    {leaf({1, 3}, 4), leaf({5, 3}, 5)}));
    CHECK(gradcheck([](auto& in) { return stack({in[0], in[1], in[0]}, 1); },
                    {leaf({3, 2}, 6), leaf({3, 2}, 7)}));
    // an input without requires_grad is skipped, the others still get theirs
    Tensor fixed = zeros({2, 2}, DType::f64);
    CHECK(gradcheck([&](auto& in) { return concat({fixed, in[0]}, -1); }, {leaf({2, 3}, 8)}));
}

TEST_CASE("shape_ops: concat and stack errors") {
    CHECK_THROWS_WITH_AS(concat({}, 0), doctest::Contains("concat: needs at least one tensor"), Error);
    CHECK_THROWS_WITH_AS(concat({zeros({2, 3}), zeros({2, 3}, DType::f64)}, 0),
                         doctest::Contains("concat: tensor 1 is float64 but tensor 0 is float32"),
                         Error);
    CHECK_THROWS_WITH_AS(concat({zeros({2, 3}), zeros({3, 4})}, 0),
                         doctest::Contains("concat: tensor 1 has shape (3, 4) but tensor 0 has shape (2, 3); the sizes must match except in dim 0"),
                         Error);
    CHECK_THROWS_WITH_AS(concat({zeros({2, 3}), zeros({2, 3, 1})}, 0),
                         doctest::Contains("concat: tensor 1 has shape (2, 3, 1)"), Error);
    CHECK_THROWS_WITH_AS(concat({zeros({2, 3})}, 2), doctest::Contains("concat: dim 2 is out of range"),
                         Error);
    CHECK_THROWS_WITH_AS(stack({zeros({2, 3}), zeros({3, 2})}, 0),
                         doctest::Contains("stack: tensor 1 has shape (3, 2) but tensor 0 has shape (2, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(stack({zeros({2, 3})}, 3), doctest::Contains("stack: dim 3 is out of range"),
                         Error);
}

TEST_CASE("shape_ops: narrow and split forward") {
    Tensor x = iota({3, 5, 2}, DType::i32);
    std::vector<double> xv = x.to_vector<double>();
    Tensor n = narrow(x, 1, 1, 3);
    REQUIRE(n.shape() == Shape{3, 3, 2});
    for (std::int64_t i = 0; i < n.numel(); ++i) {
        Coords k = coords_of(i, n.shape());
        CHECK(n.to_vector<double>()[i] == xv[flat_of({k[0], k[1] + 1, k[2]}, x.shape())]);
    }
    CHECK(narrow(x, -2, -4, 3).to_vector<double>() == n.to_vector<double>());  // start counts from the end
    CHECK(narrow(x, 1, 5, 0).shape() == Shape{3, 0, 2});

    std::vector<Tensor> pieces = split(x, 2, 1);
    REQUIRE(pieces.size() == 3);
    CHECK(pieces[0].shape() == Shape{3, 2, 2});
    CHECK(pieces[2].shape() == Shape{3, 1, 2});
    CHECK(concat(pieces, 1).to_vector<double>() == xv);
    CHECK(split(x, 7, 1).size() == 1);
    CHECK(split(zeros({0, 3}), 2, 0).size() == 1);  // as torch: one empty piece

    std::vector<Tensor> sized = split(x, std::vector<std::int64_t>{1, 0, 4}, -2);
    REQUIRE(sized.size() == 3);
    CHECK(sized[1].shape() == Shape{3, 0, 2});
    CHECK(sized[2].to_vector<double>() == narrow(x, 1, 1, 4).to_vector<double>());
}

TEST_CASE("shape_ops: narrow and split gradients") {
    CHECK(gradcheck([](auto& in) { return narrow(in[0], 1, 2, 2); }, {leaf({3, 5}, 1)}));
    CHECK(gradcheck([](auto& in) { return narrow(in[0], 0, 0, 1); }, {leaf({1, 3, 1}, 2)}));
    CHECK(gradcheck([](auto& in) { return combine(split(in[0], 2, -1)); }, {leaf({2, 3, 5}, 3)}));
    CHECK(gradcheck([](auto& in) { return combine(split(in[0], std::vector<std::int64_t>{3, 1, 3}, 0)); },
                    {leaf({7, 2}, 4)}));
}

TEST_CASE("shape_ops: narrow and split errors") {
    Tensor x = zeros({2, 5});
    CHECK_THROWS_WITH_AS(narrow(x, 1, 3, 3),
                         doctest::Contains("narrow: start 3 and length 3 do not fit in dim 1 (size 5) of shape (2, 5)"),
                         Error);
    CHECK_THROWS_WITH_AS(narrow(x, 1, -6, 1), doctest::Contains("narrow: start -6"), Error);
    CHECK_THROWS_WITH_AS(narrow(x, 0, 0, -1), doctest::Contains("length -1"), Error);
    CHECK_THROWS_WITH_AS(split(x, 0, 1), doctest::Contains("split: split_size must be positive, got 0"),
                         Error);
    CHECK_THROWS_WITH_AS(split(x, std::vector<std::int64_t>{2, 2}, 1),
                         doctest::Contains("split: sizes (2, 2) add up to 4 but dim 1 of shape (2, 5) has size 5"),
                         Error);
    CHECK_THROWS_WITH_AS(split(x, std::vector<std::int64_t>{6, -1}, 1),
                         doctest::Contains("split: sizes (6, -1) contain a negative size"), Error);
}

TEST_CASE("shape_ops: index_select forward with int32 and int64 indices, any dtype") {
    for (DType dt : {DType::f32, DType::i64, DType::i32}) {
        Tensor x = iota({3, 4, 2}, dt);
        std::vector<double> xv = x.to_vector<double>();
        for (DType it : {DType::i32, DType::i64}) {
            Tensor index = from_vector<std::int64_t>({3, 0, 3, 1, 2}).to(it);
            Tensor y = index_select(x, 1, index);
            REQUIRE(y.shape() == Shape{3, 5, 2});
            std::vector<double> iv = index.to_vector<double>();
            for (std::int64_t i = 0; i < y.numel(); ++i) {
                Coords k = coords_of(i, y.shape());
                k[1] = static_cast<std::int64_t>(iv[k[1]]);
                CHECK(y.to_vector<double>()[i] == xv[flat_of(k, x.shape())]);
            }
        }
    }
    Tensor x = iota({4, 3}, DType::f64);
    CHECK(index_select(x, 0, from_vector<std::int64_t>({2})).to_vector<double>() ==
          std::vector<double>{6, 7, 8});
    CHECK(index_select(x, -1, Tensor::empty({0}, DType::i64)).shape() == Shape{4, 0});
}

TEST_CASE("shape_ops: index_select gradient accumulates repeated indices") {
    Tensor index = from_vector<std::int64_t>({1, 1, 0, 1});
    CHECK(gradcheck([&](auto& in) { return index_select(in[0], 1, index); }, {leaf({2, 3, 4}, 1)}));
    CHECK(gradcheck([&](auto& in) { return index_select(in[0], 0, index); }, {leaf({2, 5}, 2)}));
    Tensor x = from_vector<double>({1, 2, 3}).set_requires_grad();
    sum(index_select(x, 0, from_vector<std::int32_t>({2, 2, 2, 0}))).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0, 3});
}

TEST_CASE("shape_ops: index_select errors") {
    Tensor x = zeros({2, 3});
    CHECK_THROWS_WITH_AS(index_select(x, 1, from_vector<std::int64_t>({0, 5})),
                         doctest::Contains("index_select: index 5 is out of range for dim 1 (size 3) of shape (2, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(index_select(x, 0, from_vector<std::int32_t>({-1})),
                         doctest::Contains("index_select: index -1 is out of range for dim 0 (size 2)"),
                         Error);
    CHECK_THROWS_WITH_AS(index_select(x, 0, from_vector<float>({0})),
                         doctest::Contains("index_select: index must be an int32 or int64 tensor, got float32"),
                         Error);
    CHECK_THROWS_WITH_AS(index_select(x, 0, zeros({1, 1}, DType::i64)),
                         doctest::Contains("index_select: index must be 1-D, got shape (1, 1)"), Error);
}

TEST_CASE("shape_ops: gather matches PyTorch and a reference loop") {
    Fixture f("shape_norm.txt");
    CHECK(max_abs_diff(gather(f["gather.x"], 1, f["gather.i1"]), f["gather.dim1"]) == 0);
    CHECK(max_abs_diff(gather(f["gather.x"], 0, f["gather.i0"]), f["gather.dim0"]) == 0);
    CHECK(max_abs_diff(gather(f["gather.x"], 1, f["gather.i1"].to(DType::i32)), f["gather.dim1"]) == 0);

    // an index smaller than x in every dim, on an int tensor
    Tensor x = iota({3, 4, 5}, DType::i32);
    Generator gen(7);
    for (int dim = 0; dim < 3; ++dim) {
        Shape ishape{2, 3, 4};
        Tensor index = randint(0, x.shape()[dim], ishape, DType::i64, &gen);
        Tensor y = gather(x, dim, index);
        REQUIRE(y.shape() == ishape);
        std::vector<double> xv = x.to_vector<double>(), iv = index.to_vector<double>();
        for (std::int64_t i = 0; i < y.numel(); ++i) {
            Coords k = coords_of(i, ishape);
            k[dim] = static_cast<std::int64_t>(iv[i]);
            CHECK(y.to_vector<double>()[i] == xv[flat_of(k, x.shape())]);
        }
    }
}

TEST_CASE("shape_ops: scatter_add matches a reference loop") {
    Generator gen(3);
    for (int dim = 0; dim < 3; ++dim) {
        Tensor x = iota({3, 4, 5}, DType::f64);
        Tensor src = leaf({3, 4, 6}, 10 + dim).detach();  // src may be larger than the index
        Shape ishape{2, 3, 4};
        Tensor index = randint(0, x.shape()[dim], ishape, DType::i32, &gen);
        Tensor y = scatter_add(x, dim, index, src);
        std::vector<double> expected = x.to_vector<double>(), sv = src.to_vector<double>(),
                            iv = index.to_vector<double>();
        for (std::int64_t i = 0; i < index.numel(); ++i) {
            Coords k = coords_of(i, ishape), to = k;
            to[dim] = static_cast<std::int64_t>(iv[i]);
            expected[flat_of(to, x.shape())] += sv[flat_of(k, src.shape())];
        }
        CHECK(max_abs_diff(y, from_vector(expected, x.shape())) < 1e-12);
    }
    Tensor counts = scatter_add(zeros({4}, DType::i64), 0, from_vector<std::int64_t>({1, 3, 1, 1}),
                                ones({4}, DType::i64));
    CHECK(counts.to_vector<double>() == std::vector<double>{0, 3, 0, 1});
}

TEST_CASE("shape_ops: gather and scatter_add gradients") {
    Tensor i1 = from_vector<std::int64_t>({0, 0, 2, 1, 2, 2}, {2, 3});
    CHECK(gradcheck([&](auto& in) { return gather(in[0], 1, i1); }, {leaf({2, 3}, 1)}));
    CHECK(gradcheck([&](auto& in) { return gather(in[0], 0, i1.to(DType::i32)); }, {leaf({3, 4}, 2)}));
    Tensor i3 = from_vector<std::int64_t>({0, 1, 0, 0}, {1, 4, 1});
    CHECK(gradcheck([&](auto& in) { return gather(in[0], 1, i3); }, {leaf({1, 2, 1}, 3)}));
    CHECK(gradcheck([&](auto& in) { return scatter_add(in[0], 1, i1, in[1]); },
                    {leaf({2, 3}, 4), leaf({2, 3}, 5)}));
    CHECK(gradcheck([&](auto& in) { return scatter_add(in[0], 0, i1, in[1]); },  // src larger
                    {leaf({3, 5}, 6), leaf({3, 4}, 7)}));
    Tensor fixed_src = leaf({2, 3}, 8).detach();  // only x differentiated
    CHECK(gradcheck([&](auto& in) { return scatter_add(in[0], 1, i1, fixed_src); }, {leaf({2, 3}, 9)}));
}

TEST_CASE("shape_ops: gather and scatter_add errors") {
    Tensor x = zeros({2, 3});
    CHECK_THROWS_WITH_AS(gather(x, 1, from_vector<std::int64_t>({0, 5}, {1, 2})),
                         doctest::Contains("gather: index 5 is out of range for dim 1 (size 3) of shape (2, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(gather(x, 1, from_vector<std::int64_t>({0, 1})),
                         doctest::Contains("gather: index has 1 dims but x has 2"), Error);
    CHECK_THROWS_WITH_AS(gather(x, 1, zeros({3, 1}, DType::i64)),
                         doctest::Contains("gather: index of shape (3, 1) is larger than x of shape (2, 3) in dim 0"),
                         Error);
    CHECK_THROWS_WITH_AS(gather(x, 1, zeros({2, 1})),
                         doctest::Contains("gather: index must be an int32 or int64 tensor, got float32"),
                         Error);
    Tensor index = zeros({2, 2}, DType::i64);
    CHECK_THROWS_WITH_AS(scatter_add(x, 1, index, zeros({2, 1})),
                         doctest::Contains("scatter_add: index of shape (2, 2) is larger than src of shape (2, 1) in dim 1"),
                         Error);
    CHECK_THROWS_WITH_AS(scatter_add(x, 1, index, zeros({2, 2}, DType::f64)),
                         doctest::Contains("scatter_add: src is float64 but x is float32"), Error);
    CHECK_THROWS_WITH_AS(scatter_add(x, 0, full({2, 2}, 2, DType::i64), zeros({2, 2})),
                         doctest::Contains("scatter_add: index 2 is out of range for dim 0 (size 2)"),
                         Error);
}

TEST_CASE("shape_ops: accumulating backward passes do not depend on the thread count") {
    // many repeated indices: every output receives a long sum whose order must be fixed
    Generator gen(5);
    Tensor x = uniform({3000, 8}, -1, 1, DType::f32, &gen);
    Tensor index = randint(0, 7, {3000, 8}, DType::i64, &gen);
    Tensor rows = randint(0, 5, {4000}, DType::i64, &gen);
    Tensor padded_map = uniform({2, 3, 40, 50}, -1, 1, DType::f32, &gen);
    auto run = [&] {
        std::vector<Tensor> out;
        out.push_back(scatter_add(zeros({7, 8}), 0, index, x));
        Tensor xs = x.clone().detach().set_requires_grad();
        sum(index_select(xs, 0, rows) * 3.0).backward();
        out.push_back(xs.grad());
        Tensor m = padded_map.clone().detach().set_requires_grad();
        Tensor y = pad(m, {39, 49, 39, 39}, "reflect");
        y.backward(ones_like(y));
        out.push_back(m.grad());
        return out;
    };
    const int saved = num_threads();
    set_num_threads(1);
    std::vector<Tensor> one = run();
    set_num_threads(2);
    std::vector<Tensor> two = run();
    set_num_threads(saved);
    for (std::size_t k = 0; k < one.size(); ++k)
        CHECK(one[k].to_vector<float>() == two[k].to_vector<float>());
}

TEST_CASE("shape_ops: pad matches PyTorch (reflect, replicate, constant with crops)") {
    Fixture f("shape_norm.txt");
    Tensor x = f["pad.x"];
    CHECK(max_abs_diff(pad(x, {2, 1, 1, 2}, "reflect"), f["pad.reflect"]) == 0);
    CHECK(max_abs_diff(pad(x, {3, 0, 0, 2}, "replicate"), f["pad.replicate"]) == 0);
    CHECK(max_abs_diff(pad(x, {1, -2, -1, 2, 1, 0}, "constant", 0.5), f["pad.constant"]) == 0);
    CHECK(max_abs_diff(pad(f.f32("pad.x"), {2, 1, 1, 2}, "reflect"), f["pad.reflect"]) < 1e-6);
}

TEST_CASE("shape_ops: pad matches a reference loop, on int tensors too") {
    Tensor x = iota({2, 3, 4}, DType::i64);
    std::vector<double> xv = x.to_vector<double>();
    const std::vector<std::int64_t> pads{2, -1, 1, 2};  // last dim: +2 / -1; dim 1: +1 / +2
    for (std::string mode : {"constant", "reflect", "replicate"}) {
        Tensor y = pad(x, pads, mode, 7);
        REQUIRE(y.shape() == Shape{2, 6, 5});
        std::vector<double> yv = y.to_vector<double>();
        for (std::int64_t i = 0; i < y.numel(); ++i) {
            Coords k = coords_of(i, y.shape());
            std::int64_t r = k[1] - 1, c = k[2] - 2;  // source coordinates before mapping
            auto map = [&](std::int64_t s, std::int64_t n) -> std::int64_t {
                if (s >= 0 && s < n) return s;
                if (mode == "reflect") return s < 0 ? -s : 2 * (n - 1) - s;
                if (mode == "replicate") return std::clamp<std::int64_t>(s, 0, n - 1);
                return -1;
            };
            std::int64_t mr = map(r, 3), mc = map(c, 4);
            double expected = (mr < 0 || mc < 0) ? 7.0 : xv[flat_of({k[0], mr, mc}, x.shape())];
            CHECK(yv[i] == expected);
        }
    }
    CHECK(pad(x, {}).to_vector<double>() == xv);
    CHECK(pad(x, {0, 0, 0, 0, 1, 0}).shape() == Shape{3, 3, 4});
    CHECK(pad(x, {-2, -2}).shape() == Shape{2, 3, 0});
}

TEST_CASE("shape_ops: pad gradients (crop, zero-fill, reflect and replicate accumulation)") {
    CHECK(gradcheck([](auto& in) { return pad(in[0], {1, 2}); }, {leaf({2, 3}, 1)}));
    CHECK(gradcheck([](auto& in) { return pad(in[0], {-1, 2, 1, -1}, "constant", 3); },
                    {leaf({2, 3, 4}, 2)}));
    CHECK(gradcheck([](auto& in) { return pad(in[0], {2, 2, 1, 0}, "reflect"); }, {leaf({1, 2, 3, 3}, 3)}));
    CHECK(gradcheck([](auto& in) { return pad(in[0], {1, -1}, "reflect"); }, {leaf({2, 5}, 4)}));
    CHECK(gradcheck([](auto& in) { return pad(in[0], {3, 1, 0, 2}, "replicate"); }, {leaf({2, 1, 2}, 5)}));
    CHECK(gradcheck([](auto& in) { return pad(in[0], {2, 2}, "replicate"); }, {leaf({3, 1}, 6)}));
}

TEST_CASE("shape_ops: pad errors") {
    Tensor x = zeros({1, 1, 3});
    CHECK_THROWS_WITH_AS(pad(x, {3, 3}, "reflect"),
                         doctest::Contains("pad: reflect padding (3, 3) must be less than the size 3 of dim 2 of shape (1, 1, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(pad(x, {0, 0, 1, 0}, "reflect"),
                         doctest::Contains("pad: reflect padding (1, 0) must be less than the size 1 of dim 1"),
                         Error);
    CHECK_THROWS_WITH_AS(pad(x, {1, 2, 3}), doctest::Contains("pad: pads must come in (left, right) pairs, got 3 values"),
                         Error);
    CHECK_THROWS_WITH_AS(pad(x, {0, 0, 0, 0, 0, 0, 1, 1}),
                         doctest::Contains("pad: 8 values pad 4 dims, but shape (1, 1, 3) has 3"), Error);
    CHECK_THROWS_WITH_AS(pad(x, {-2, -2}),
                         doctest::Contains("pad: padding (-2, -2) of dim 2 (size 3) of shape (1, 1, 3) gives a negative size -1"),
                         Error);
    CHECK_THROWS_WITH_AS(pad(x, {1, 1}, "circular"), doctest::Contains("pad: unknown mode \"circular\""),
                         Error);
    CHECK_THROWS_WITH_AS(pad(zeros({2, 0}), {1, 1}, "replicate"),
                         doctest::Contains("pad: replicate padding of dim 1 of shape (2, 0) has nothing to replicate"),
                         Error);
}
