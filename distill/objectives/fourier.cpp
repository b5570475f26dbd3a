// distill/objectives/fourier.cpp: ViT-to-CNN distillation in the frequency domain, `fourier`.
//
// A ViT's tokens and a CNN's map differ in layout, resolution and width, but both are images of
// features over a 2-D grid, and their 2-D spectra can be compared bin by bin. Per pair:
//
//   m_s, m_t   = the two features as maps (B, C, H, W): a ViT's tokens (B, N, C) lose their
//                prefix tokens and are unflattened to the patch grid (token_grid.h); a map
//                passes as it is. Either side may be a ViT or a CNN.
//   connector  conv: m_s <- BatchNorm(Conv1x1(m_s)), sC -> tC channels, trained with the student.
//              pool: parameter-free; the wider of the two maps is averaged over groups of
//              adjacent channels down to the narrower one's width c: output channel j is the
//              mean of input channels [floor(j C / c), ceil((j + 1) C / c)) (the windows of
//              adaptive average pooling, laid along the channel axis; SpectralKD's choice, which
//              pools the teacher when it is the wider).
//   grid       both maps are adaptive-average-pooled to (min(H_s, H_t), min(W_s, W_t)).
//   F_s, F_t   = rfft2(m, norm = "ortho")  (B, C, H, K) complex, K = W / 2 + 1: orthonormal, so a
//                spectrum's energy equals its map's and grids of any size are on one scale.
//   low pass   keep > 0 keeps the frequencies |f| < keep on each axis: rows 0 .. keep-1 and
//              H-keep+1 .. H-1 (the full transform over H wraps the negative frequencies to the
//              end), columns 0 .. keep-1 (rfft2's last axis holds only 0 .. W/2). keep = 0: all.
//   component  amplitude   mean over bins of (|F_s| - |F_t|)^2
//              complex     mean over bins and (re, im) of (F_s - F_t)^2  (the MSE of the stacked
//                          real and imaginary parts, SpectralKD's loss)
//              phase       mean over bins of |F_t| (1 - cos(angle F_s - angle F_t)), the phase
//                          error weighted by the teacher's amplitude so that bins where the
//                          teacher has no energy do not count. Computed without atan2:
//                          |F_t| cos(angle F_s - angle F_t) = <F_s, F_t> / |F_s|, so the term is
//                              |F_t| - (re_s re_t + im_s im_t) / sqrt(|F_s|^2 + eps^2),
//                          eps = 1e-3: the gradient stays bounded (at most |F_t| / eps) where a
//                          student bin vanishes and its phase does not exist.
//   loss = sum over pairs of the pair's value.
//
// Paper: none; retort defines this objective. The nearest published designs with code:
//  - SpectralKD (Tian et al. 2024, "SpectralKD: A Unified Framework for Interpreting and
//    Distilling Vision Transformers via Spectral Analysis"; thy960112/SpectralKD losses.py,
//    layer_fft_loss): ViT-to-ViT; the teacher's token maps are adaptive-average-pooled over
//    channels to the student's width, rfft2 with norm = "ortho" of both, MSE of the stacked real
//    and imaginary parts, averaged over the distilled layers. `fourier` with connector = pool,
//    component = complex and keep = 0 is that loss on one pair (pairs are summed here, as every
//    multi-pair objective in retort, where SpectralKD averages them); it adds maps of different
//    grids, CNN maps, a learned connector, amplitude and phase comparisons and the low pass.
//  - FAM-KD (Pham et al., WACV 2024, "Frequency Attention for Knowledge Distillation";
//    cuong-pv/FAM-KD distillers/FAM_KD.py): CNN-to-CNN; a learned frequency-attention module on
//    the student (fft2 "ortho", per-frequency complex channel mixing, a high-pass mask that zeroes
//    the lowest frequencies, ifft2, plus a 1x1 conv branch) inside ReviewKD-style fusion, with the
//    MSE taken in the spatial domain. `fourier` instead compares the spectra themselves, has no
//    learned filter, and its optional mask keeps the low frequencies rather than the high ones.
//
// Shapes: B batch; C channels (sC student, tC teacher); H x W a map (the common grid after
// pooling); K = W / 2 + 1 spectrum columns; N tokens.
//
// Defaults: one pair, the student's last map and the teacher's last block's patch tokens
// (feature_map:patch_tokens: for a ViT the patch tokens after the final norm, prefix dropped);
// connector = conv, component = amplitude, keep = 0; used with weight 1 next to ce:1 and kd:1.
//
// Backward: through the ops it is built from; rfft2 is linear (its backward is the adjoint
// transform), complex_abs saves z and |z|, BatchNorm its batch statistics.
//
// Connector parameters (connector = conv): connectors.<pair>.0.weight (tC, sC, 1, 1), no bias
// (the BatchNorm after it has one), connectors.<pair>.1.{weight, bias, running_mean, running_var},
// as nn.ModuleList([nn.Sequential(nn.Conv2d(sC, tC, 1, bias=False), nn.BatchNorm2d(tC))]);
// PyTorch's default initialization.
#include <algorithm>
#include <vector>

#include "distill/objectives/cnn_vit.h"
#include "distill/objectives/feature_map_common.h"
#include "distill/objectives/token_grid.h"
#include "engine/ops.h"
#include "layers/conv2d.h"
#include "layers/sequential.h"

namespace retort {
namespace {

// Keeps the phase term's gradient bounded where a student bin is (nearly) zero.
constexpr double kPhaseEps = 1e-3;

enum class Component { amplitude, complex, phase };

Component parse_component(const std::string& name) {
    if (name == "amplitude") return Component::amplitude;
    if (name == "complex") return Component::complex;
    if (name == "phase") return Component::phase;
    fail("fourier: component must be amplitude, complex or phase, got '", name, "'");
}

struct FourierOptions {
    std::string connector;  // conv | pool
    Component component;
    std::int64_t keep;           // 0: every frequency
    std::int64_t prefix_tokens;  // -1: inferred from the token count
};

// Mean over windows of adjacent channels: (B, C, H, W) -> (B, channels, H, W).
Tensor pool_channels(const Tensor& x, std::int64_t channels) {
    const std::int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    if (C == channels) return x;
    // The channel axis as the rows of a (C, H*W) image: adaptive pooling over rows only.
    Tensor pooled = adaptive_avg_pool2d(x.reshape({B, 1, C, H * W}), {channels, H * W});
    return pooled.reshape({B, channels, H, W});
}

Tensor pool_to_grid(const Tensor& x, std::int64_t h, std::int64_t w) {
    if (x.size(2) == h && x.size(3) == w) return x;
    return adaptive_avg_pool2d(x, {h, w});
}

// The bins with |frequency| < keep on both axes of a (B, C, H, K, 2) spectrum.
Tensor low_pass(const Tensor& spectrum, std::int64_t keep) {
    if (keep == 0) return spectrum;
    Tensor out = spectrum;
    const std::int64_t H = spectrum.size(2), K = spectrum.size(3);
    if (2 * keep - 1 < H) {
        std::vector<std::int64_t> rows;
        for (std::int64_t r = 0; r < keep; ++r) rows.push_back(r);
        for (std::int64_t r = H - keep + 1; r < H; ++r) rows.push_back(r);
        out = index_select(out, 2, from_vector(rows).to(out.device()));
    }
    if (keep < K) out = narrow(out, 3, 0, keep);
    return out;
}

// |F_t| - <F_s, F_t> / sqrt(|F_s|^2 + eps^2), averaged over the bins.
Tensor phase_loss(const Tensor& fs, const Tensor& ft) {
    Tensor dot = sum(fs * ft, {-1});
    Tensor smooth_abs_s = sqrt(sum(square(fs), {-1}) + kPhaseEps * kPhaseEps);
    return mean(complex_abs(ft) - dot / smooth_abs_s);
}

class Fourier : public Objective {
public:
    Fourier(const ObjectiveSetup& setup, const FourierOptions& options)
        : Objective("Fourier"), pairs_(setup.pairs), options_(options) {
        if (options_.connector == "conv")
            connectors_ = register_module("connectors", std::make_shared<ModuleList>());
        for (const ObjectiveSetup::Pair& pair : pairs_) {
            const Shape s = map_shape_of(pair.student_shape, options_.prefix_tokens,
                                         "fourier: pair '" + pair.name + "' student");
            const Shape t = map_shape_of(pair.teacher_shape, options_.prefix_tokens,
                                         "fourier: pair '" + pair.name + "' teacher");
            check_keep(pair.name, std::min(s[1], t[1]), std::min(s[2], t[2]));
            if (connectors_) connectors_->push_back(make_connector(s[0], t[0]));
        }
    }

    Tensor forward(const ObjectiveInputs& in) override {
        check_feature_pairs(in, pairs_.size(), "fourier");
        Tensor total;
        for (std::size_t i = 0; i < pairs_.size(); ++i) {
            const FeaturePair& pair = in.features[i];
            require_setup_shape(pair.student, pairs_[i].student_shape, "fourier",
                                "pair '" + pair.name + "': the student feature");
            require_setup_shape(pair.teacher, pairs_[i].teacher_shape, "fourier",
                                "pair '" + pair.name + "': the teacher feature");
            Tensor loss = pair_loss(i, pair);
            total = total.defined() ? total + loss : loss;
        }
        return total;
    }

private:
    static std::shared_ptr<Sequential> make_connector(std::int64_t in, std::int64_t out) {
        auto seq = std::make_shared<Sequential>();
        seq->push_back(std::make_shared<Conv2d>(
            Conv2dSpec{.in_channels = in, .out_channels = out, .kernel = 1, .bias = false}));
        seq->push_back(std::make_shared<BatchNorm2d>(out));
        return seq;
    }

    // keep counts frequencies 0 .. keep-1 per axis; an axis of n points has n / 2 + 1 of them.
    void check_keep(const std::string& pair, std::int64_t h, std::int64_t w) const {
        const std::int64_t most = std::min(h / 2 + 1, w / 2 + 1);
        require(options_.keep <= most, "fourier: keep = ", options_.keep, " is more than the ",
                most, " frequencies per axis of pair '", pair, "''s common ", h, "x", w,
                " grid (set keep <= ", most, ", or 0 for all)");
    }

    Tensor pair_loss(std::size_t i, const FeaturePair& pair) {
        Tensor s = as_feature_map(pair.student, options_.prefix_tokens,
                                  "fourier: pair '" + pair.name + "' student");
        Tensor t = as_feature_map(pair.teacher, options_.prefix_tokens,
                                  "fourier: pair '" + pair.name + "' teacher");
        if (connectors_) {
            s = connectors_->apply(i, s);
        } else {
            const std::int64_t width = std::min(s.size(1), t.size(1));
            s = pool_channels(s, width);
            t = pool_channels(t, width);
        }
        const std::int64_t h = std::min(s.size(2), t.size(2)), w = std::min(s.size(3), t.size(3));
        Tensor fs = low_pass(rfft2(pool_to_grid(s, h, w), FftNorm::ortho), options_.keep);
        Tensor ft = low_pass(rfft2(pool_to_grid(t, h, w), FftNorm::ortho), options_.keep);
        switch (options_.component) {
            case Component::amplitude: return mse_loss(complex_abs(fs), complex_abs(ft));
            case Component::complex: return mse_loss(fs, ft);
            case Component::phase: return phase_loss(fs, ft);
        }
        internal_check(false, "fourier: unhandled component");
        return {};
    }

    std::vector<ObjectiveSetup::Pair> pairs_;
    FourierOptions options_;
    std::shared_ptr<ModuleList> connectors_;  // null for connector = pool
};

}  // namespace

ObjectiveEntry fourier_entry() {
    ObjectiveEntry e;
    e.name = "fourier";
    e.paper = "retort's own (ViT-to-CNN spectra); nearest published: SpectralKD (Tian et al. "
              "2024), FAM-KD (Pham et al., WACV 2024)";
    e.reference = "SpectralKD (thy960112/SpectralKD): losses.py layer_fft_loss; "
                  "FAM-KD (cuong-pv/FAM-KD): distillers/FAM_KD.py";
    e.taps = "one or more feature pairs, maps or ViT tokens on either side (default: the "
             "student's last map and the teacher's patch tokens, feature_map:patch_tokens)";
    e.defaults = "connector=conv, component=amplitude, keep=0, prefix_tokens=-1";
    e.default_taps = "feature_map:patch_tokens";
    e.min_pairs = 1;
    e.max_pairs = -1;
    e.declare = [](Config& c) {
        c.declare_string("fourier", "connector", "conv",
                         "student-to-teacher channels: conv (1x1 conv + BatchNorm, trained with "
                         "the student) or pool (the wider map averaged over groups of adjacent "
                         "channels to the narrower one's width, no parameters)",
                         {"conv", "pool"});
        c.declare_string("fourier", "component", "amplitude",
                         "what of the rfft2 (ortho) spectra is compared: amplitude (MSE of |F|), "
                         "complex (MSE of real and imaginary parts) or phase (mean of "
                         "|F_t| (1 - cos of the phase difference))",
                         {"amplitude", "complex", "phase"});
        c.declare_int("fourier", "keep", 0, 0, 4096,
                      "low pass: compare only the frequencies |f| < keep on each axis (0: all)");
        c.declare_int("fourier", "prefix_tokens", -1, -1, 64,
                      "prefix tokens (class, distillation) before a ViT's patch tokens; -1 infers "
                      "them from the token count (N, N - 1 or N - 2 a square)");
    };
    e.create = [](const Config& c, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        FourierOptions o;
        o.connector = c.get_string("fourier.connector");
        o.component = parse_component(c.get_string("fourier.component"));
        o.keep = c.get_int("fourier.keep");
        o.prefix_tokens = c.get_int("fourier.prefix_tokens");
        return std::make_shared<Fourier>(setup, o);
    };
    return e;
}

}  // namespace retort
