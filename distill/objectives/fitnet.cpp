// distill/objectives/fitnet.cpp: FitNet's hint loss.
//
//     loss = mean over (B, C, H, W) of (r(f_s) - f_t)^2          (nn.MSELoss, reduction "mean")
//
// where r is the regressor ("connector"): RepDistiller's ConvReg (a convolution chosen from the
// two shapes, BatchNorm, ReLU; see feature_map_common.h) or the identity for equal shapes.
//
// Paper: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.
// Reference followed: RepDistiller distiller_zoo/FitNet.py (HintLoss) and models/util.py (ConvReg),
// whose CIFAR runs use one stage: the hint loss is added to the main loss throughout
// (train_student.py --distill hint, hint layer 2).
//
// Shapes: B batch, C channels, H x W a feature map; one pair, student (B, sC, sH, sW) and teacher
// (B, tC, tH, tW) (identity: any equal shapes, token sequences (B, N, C) too). With the conv
// connector a ViT's tokens (B, N, C) on either side are read as the map of their patch grid
// (token_grid.h: prefix tokens dropped), so a CNN student can take hints from a ViT teacher, as
// the FitNet baselines of cross-architecture papers (OFA-KD) do.
//
// Stages: stage1_epochs = 0 (default) is RepDistiller's one-stage recipe: forward() is the hint
// loss. stage1_epochs > 0 is the paper's two-stage recipe: the hint loss alone trains the student
// and the regressor for that many epochs (pre_stage_loss), then the student is trained with the
// other objectives (KD in the paper) while forward() gives a zero that keeps the graph.
//
// Backward: through the ops it is built from (each records and saves what it needs).
//
// Connector parameters: "regressor.conv.weight", "regressor.conv.bias", "regressor.bn.*",
// initialized as PyTorch initializes nn.Conv2d / nn.ConvTranspose2d / nn.BatchNorm2d (RepDistiller
// does not re-initialize them).
#include "distill/objectives/feature_map_common.h"
#include "distill/objectives/token_grid.h"
#include "engine/ops.h"

namespace retort {
namespace {

class FitNet : public Objective {
public:
    FitNet(const ObjectiveSetup& setup, const std::string& connector, std::int64_t stage1_epochs)
        : Objective("FitNet"), pair_(setup.pairs.at(0)), stage1_epochs_(stage1_epochs) {
        if (connector == "conv") {
            as_maps_ = true;
            regressor_ = register_module(
                "regressor",
                std::make_shared<ConvReg>(
                    feature_map_shape(pair_.student_shape, -1, "fitnet: the student feature"),
                    feature_map_shape(pair_.teacher_shape, -1, "fitnet: the teacher feature"), true,
                    "fitnet"));
        } else {
            require(pair_.student_shape == pair_.teacher_shape, "fitnet: connector = identity needs ",
                    "equal student and teacher shapes, got ", shape_str(pair_.student_shape),
                    " and ", shape_str(pair_.teacher_shape), " (use connector = conv)");
        }
    }

    Tensor forward(const ObjectiveInputs& in) override {
        check(in);
        return stage1_epochs_ > 0 ? graph_zero(in) : hint_loss(in);
    }
    std::int64_t pre_stage_epochs() const override { return stage1_epochs_; }
    Tensor pre_stage_loss(const ObjectiveInputs& in) override {
        check(in);
        return hint_loss(in);
    }

private:
    void check(const ObjectiveInputs& in) const {
        check_feature_pairs(in, 1, "fitnet");
        const FeaturePair& p = in.features[0];
        require_setup_shape(p.student, pair_.student_shape, "fitnet", "the student feature");
        require_setup_shape(p.teacher, pair_.teacher_shape, "fitnet", "the teacher feature");
    }
    Tensor hint_loss(const ObjectiveInputs& in) {
        const FeaturePair& p = in.features[0];
        if (!as_maps_) return mse_loss(p.student, p.teacher);
        const Tensor student = as_feature_map(p.student, -1, "fitnet: the student feature");
        const Tensor teacher = as_feature_map(p.teacher, -1, "fitnet: the teacher feature");
        return mse_loss(regressor_->forward(student), teacher);
    }

    ObjectiveSetup::Pair pair_;
    std::int64_t stage1_epochs_;
    std::shared_ptr<ConvReg> regressor_;  // null for connector = identity
    bool as_maps_ = false;                // conv connector: tokens read as maps
};

}  // namespace

ObjectiveEntry fitnet_entry() {
    ObjectiveEntry e;
    e.name = "fitnet";
    e.default_taps = "layer2";
    e.paper = "Romero et al. 2015, FitNets: Hints for Thin Deep Nets";
    e.reference = "RepDistiller (HobbitLong): distiller_zoo/FitNet.py, models/util.py ConvReg";
    e.taps = "one feature pair (RepDistiller: layer2, the hint layer); ViT tokens as their patch grid";
    e.defaults = "connector=conv, stage1_epochs=0";
    e.min_pairs = e.max_pairs = 1;
    e.declare = [](Config& c) {
        c.declare_string("fitnet", "connector", "conv",
                         "regressor from the student's feature to the teacher's: conv "
                         "(RepDistiller's ConvReg: conv + BatchNorm + ReLU) or identity (equal shapes)",
                         {"conv", "identity"});
        c.declare_int("fitnet", "stage1_epochs", 0, 0, 100000,
                      "0: one stage, the hint loss throughout (RepDistiller); >0: the paper's "
                      "two stages, this many epochs of the hint loss alone first");
    };
    e.create = [](const Config& c, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<FitNet>(setup, c.get_string("fitnet.connector"),
                                        c.get_int("fitnet.stage1_epochs"));
    };
    return e;
}

}  // namespace retort
