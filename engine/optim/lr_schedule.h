// engine/optim/lr_schedule.h: learning-rate schedules as pure functions of the step.
//
// A schedule answers lr(t, base_lr): the learning rate to use for step (or epoch) t = 0, 1, 2, ...
// given the lr the optimizer group started with. It keeps no state, so a resumed run only needs
// its step counter. apply_lr_schedule() sets every group of an optimizer from its initial_lr.
//
// The formulas, and the PyTorch schedulers they reproduce (the lr an optimizer sees after t calls
// of scheduler.step(); checked against PyTorch in tests/test_optim.cpp):
//
//   StepLR(step_size, gamma)          lr = base * gamma^floor(t / step_size)
//                                     torch.optim.lr_scheduler.StepLR
//   MultiStepLR(milestones, gamma)    lr = base * gamma^(number of milestones m with m <= t)
//                                     torch.optim.lr_scheduler.MultiStepLR
//   WarmupCosineLR(warmup_steps W, total_steps N, warmup_start_factor s, min_lr)
//       t <  W:       lr = base * (s + (1 - s) * t / W)          linear, from s*base up to base
//       W <= t <= N:  lr = min_lr + (base - min_lr) * (1 + cos(pi * (t - W) / (N - W))) / 2
//       t >  N:       lr = min_lr
//     = SequentialLR([LinearLR(start_factor=s, end_factor=1, total_iters=W),
//                     CosineAnnealingLR(T_max=N-W, eta_min=min_lr)], milestones=[W]) for t <= N;
//     W = 0 is CosineAnnealingLR alone. Past N, PyTorch's cosine climbs back up; here it stays at
//     min_lr, because a run that outlasts its schedule should not have its lr raised again.
#pragma once

#include <cstdint>
#include <vector>

namespace retort {

class Optimizer;

class LrSchedule {
public:
    virtual ~LrSchedule() = default;
    // The learning rate for step t >= 0 of a group whose initial lr is base_lr.
    virtual double lr(std::int64_t t, double base_lr) const = 0;
};

class StepLR : public LrSchedule {
public:
    StepLR(std::int64_t step_size, double gamma);  // step_size >= 1, gamma >= 0
    double lr(std::int64_t t, double base_lr) const override;

private:
    std::int64_t step_size_;
    double gamma_;
};

class MultiStepLR : public LrSchedule {
public:
    MultiStepLR(std::vector<std::int64_t> milestones, double gamma);  // strictly increasing, > 0
    double lr(std::int64_t t, double base_lr) const override;

private:
    std::vector<std::int64_t> milestones_;
    double gamma_;
};

struct WarmupCosineOptions {
    std::int64_t warmup_steps = 0;       // W >= 0
    std::int64_t total_steps = 0;        // N > W
    double warmup_start_factor = 0.1;    // s in [0, 1]
    double min_lr = 0;                   // >= 0
};

class WarmupCosineLR : public LrSchedule {
public:
    explicit WarmupCosineLR(const WarmupCosineOptions& options);
    double lr(std::int64_t t, double base_lr) const override;

private:
    WarmupCosineOptions options_;
};

// Sets each group's lr to schedule.lr(t, group.initial_lr).
void apply_lr_schedule(Optimizer& optimizer, const LrSchedule& schedule, std::int64_t t);

}  // namespace retort
