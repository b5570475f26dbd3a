// distill/objectives/ft.cpp: factor transfer.
//
// A paraphraser (an encoder-decoder on the teacher's feature) is first trained alone to
// reconstruct the teacher's feature; its encoder's output is the teacher's "factor". A translator
// on the student's feature produces the student's factor, and the loss compares the two:
//     pre-stage:  loss = mean over (B, tC, H, W) of (decoder(encoder(f_t)) - f_t)^2
//     main:       a(x) = normalize( mean over channels of x^2 , flattened to (B, H W) )
//                 loss = mean over (B, H W) of | a(translator(f_s)) - a(encoder(f_t)) |
//
// Paper: Kim et al., "Paraphrasing Complex Network: Network Compression via Factor Transfer",
// NeurIPS 2018 (rate k = 0.5, the L1 distance between normalized factors).
// Reference followed: RepDistiller distiller_zoo/FT.py (FactorTransfer, p1 = 2, p2 = 1) and
// models/util.py (Paraphraser with use_bn = False, Translator with use_bn = True, k = 0.5);
// train_student.py trains the paraphraser for init_epochs = 30 epochs with nn.MSELoss, then keeps
// it fixed (eval mode, not optimized) while the translator trains with the student (weight
// beta = 200). Where the paper normalizes the flattened factor itself, RepDistiller (followed
// here) normalizes its channel mean of squares, like an attention map.
//
// Shapes: B batch, sC / tC channels, H x W the map; k tC (truncated) factor channels. The factor
// maps keep their input's size (3x3 convolutions, padding 1); if the two differ, the larger is
// adaptive-average-pooled to the smaller's size, as RepDistiller.
//
// Modules, with the reference's state-dict names (nn.Sequential indices; an empty BatchNorm slot
// registers nothing):
//   paraphraser.encoder.{0,3,6}  Conv2d 3x3: tC -> tC -> k tC -> k tC, LeakyReLU(0.1) after each
//   paraphraser.decoder.{0,3,6}  ConvTranspose2d 3x3: k tC -> k tC -> tC -> tC, LeakyReLU(0.1)
//   translator.encoder.{0,3,6}   Conv2d 3x3: sC -> sC -> k tC -> k tC, each followed by
//   translator.encoder.{1,4,7}   BatchNorm2d and LeakyReLU(0.1)
// all with PyTorch's default initialization (the reference does not re-initialize).
// In the main stage the paraphraser runs under NoGradGuard, so it gets no gradient and the
// optimizer leaves it as the pre-stage trained it.
// Backward: through the ops the modules are built from (each records its own node).
#include "distill/objectives/feature_map_common.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "layers/conv2d.h"
#include "layers/sequential.h"

namespace retort {
namespace {

constexpr double kSlope = 0.1;  // the reference's LeakyReLU slope

std::shared_ptr<Sequential> conv_stack(const std::vector<std::int64_t>& channels, bool transposed,
                                       bool batch_norm) {
    auto stack = std::make_shared<Sequential>();
    for (std::size_t i = 0; i + 1 < channels.size(); ++i) {
        const std::int64_t in = channels[i], out = channels[i + 1];
        if (transposed)
            stack->push_back(std::make_shared<ConnectorConv>(
                ConnectorConv::Spec{in, out, {3, 3}, 1, 1, true}));
        else
            stack->push_back(std::make_shared<Conv2d>(Conv2dSpec{in, out, 3, 1, 1}));
        if (batch_norm)
            stack->push_back(std::make_shared<BatchNorm2d>(out));
        else
            stack->push_back(std::make_shared<Sequential>());  // the reference's empty slot
        stack->push_back(std::make_shared<LeakyReLU>(kSlope));
    }
    return stack;
}

class Paraphraser : public Module {
public:
    Paraphraser(std::int64_t channels, std::int64_t factors) : Module("Paraphraser") {
        encoder = register_module("encoder", conv_stack({channels, channels, factors, factors}, false, false));
        decoder = register_module("decoder", conv_stack({factors, factors, channels, channels}, true, false));
    }
    std::shared_ptr<Sequential> encoder, decoder;
};

class Translator : public Module {
public:
    Translator(std::int64_t channels, std::int64_t factors) : Module("Translator") {
        encoder = register_module("encoder", conv_stack({channels, channels, factors, factors}, false, true));
    }
    std::shared_ptr<Sequential> encoder;
};

class FactorTransfer : public Objective {
public:
    FactorTransfer(const ObjectiveSetup& setup, std::int64_t paraphraser_epochs, double rate)
        : Objective("FactorTransfer"), pair_(setup.pairs.at(0)), paraphraser_epochs_(paraphraser_epochs) {
        require_map(pair_.student_shape, "ft", "the student feature");
        require_map(pair_.teacher_shape, "ft", "the teacher feature");
        const std::int64_t tC = pair_.teacher_shape[1];
        const auto factors = static_cast<std::int64_t>(static_cast<double>(tC) * rate);
        require(factors >= 1, "ft: rate ", rate, " of the teacher's ", tC,
                " channels leaves no factor channel");
        paraphraser_ = register_module("paraphraser", std::make_shared<Paraphraser>(tC, factors));
        translator_ = register_module("translator",
                                      std::make_shared<Translator>(pair_.student_shape[1], factors));
    }

    Tensor forward(const ObjectiveInputs& in) override {
        check(in);
        const FeaturePair& p = in.features[0];
        Tensor factor_s = translator_->encoder->forward(p.student);
        Tensor factor_t;
        {
            NoGradGuard frozen;  // the paraphraser was trained in the pre-stage and stays fixed
            factor_t = paraphraser_->encoder->forward(p.teacher);
        }
        auto [s, t] = pool_to_common_size(factor_s, factor_t, "ft", "the factors");
        return mean(abs(attention(s) - attention(t)));
    }

    std::int64_t pre_stage_epochs() const override { return paraphraser_epochs_; }

    Tensor pre_stage_loss(const ObjectiveInputs& in) override {
        check(in);
        const Tensor& t = in.features[0].teacher;
        Tensor rebuilt = paraphraser_->decoder->forward(paraphraser_->encoder->forward(t));
        return mse_loss(rebuilt, t);
    }

private:
    void check(const ObjectiveInputs& in) const {
        check_feature_pairs(in, 1, "ft");
        require_setup_shape(in.features[0].student, pair_.student_shape, "ft", "the student feature");
        require_setup_shape(in.features[0].teacher, pair_.teacher_shape, "ft", "the teacher feature");
    }
    static Tensor attention(const Tensor& f) {
        return normalize(mean(square(f), {1}).reshape({f.size(0), -1}), 2.0, 1);
    }

    ObjectiveSetup::Pair pair_;
    std::int64_t paraphraser_epochs_;
    std::shared_ptr<Paraphraser> paraphraser_;
    std::shared_ptr<Translator> translator_;
};

}  // namespace

ObjectiveEntry ft_entry() {
    ObjectiveEntry e;
    e.name = "ft";
    e.default_taps = "feature_map";
    e.paper = "Kim et al. 2018, Paraphrasing Complex Network: Network Compression via Factor Transfer";
    e.reference = "RepDistiller (HobbitLong): distiller_zoo/FT.py, models/util.py Paraphraser, Translator";
    e.taps = "one feature-map pair (RepDistiller: feature_map, the last stage)";
    e.defaults = "paraphraser_epochs=30, rate=0.5";
    e.min_pairs = e.max_pairs = 1;
    e.declare = [](Config& c) {
        c.declare_int("ft", "paraphraser_epochs", 30, 0, 100000,
                      "epochs that train the paraphraser to rebuild the teacher's feature before the "
                      "main stage (RepDistiller's init_epochs)");
        c.declare_double("ft", "rate", 0.5, 0.0, 4.0,
                         "factor channels as a fraction of the teacher's channels (the paper's k)",
                         /*min_exclusive=*/true);
    };
    e.create = [](const Config& c, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<FactorTransfer>(setup, c.get_int("ft.paraphraser_epochs"),
                                                c.get_double("ft.rate"));
    };
    return e;
}

}  // namespace retort
