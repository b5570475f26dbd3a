// engine/optim/lr_schedule.cpp: the schedules of lr_schedule.h (formulas there).
// Matches torch.optim.lr_scheduler.StepLR, MultiStepLR, and LinearLR followed by CosineAnnealingLR
// through SequentialLR. PyTorch updates the lr recursively, step by step; the closed forms here
// give the same values up to rounding (a few units in the last place), with no state to carry.
#include "engine/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "engine/error.h"
#include "engine/optim/optimizer.h"

namespace retort {

namespace {

void check_step(std::int64_t t, const char* schedule) {
    require(t >= 0, schedule, ": step must be >= 0, got ", t);
}

void check_gamma(double gamma, const char* schedule) {
    require(gamma >= 0, schedule, ": gamma must be >= 0, got ", gamma);
}

}  // namespace

StepLR::StepLR(std::int64_t step_size, double gamma) : step_size_(step_size), gamma_(gamma) {
    require(step_size >= 1, "StepLR: step_size must be >= 1, got ", step_size);
    check_gamma(gamma, "StepLR");
}

double StepLR::lr(std::int64_t t, double base_lr) const {
    check_step(t, "StepLR");
    return base_lr * std::pow(gamma_, static_cast<double>(t / step_size_));
}

MultiStepLR::MultiStepLR(std::vector<std::int64_t> milestones, double gamma)
    : milestones_(std::move(milestones)), gamma_(gamma) {
    check_gamma(gamma, "MultiStepLR");
    for (std::size_t i = 0; i < milestones_.size(); ++i) {
        require(milestones_[i] > 0, "MultiStepLR: milestones must be > 0, got ", milestones_[i]);
        require(i == 0 || milestones_[i] > milestones_[i - 1],
                "MultiStepLR: milestones must be strictly increasing, got ", milestones_[i - 1],
                " then ", milestones_[i]);
    }
}

double MultiStepLR::lr(std::int64_t t, double base_lr) const {
    check_step(t, "MultiStepLR");
    auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), t) - milestones_.begin();
    return base_lr * std::pow(gamma_, static_cast<double>(passed));
}

WarmupCosineLR::WarmupCosineLR(const WarmupCosineOptions& options) : options_(options) {
    require(options.warmup_steps >= 0, "WarmupCosineLR: warmup_steps must be >= 0, got ",
            options.warmup_steps);
    require(options.total_steps > options.warmup_steps,
            "WarmupCosineLR: total_steps (", options.total_steps,
            ") must be greater than warmup_steps (", options.warmup_steps, ")");
    require(options.warmup_start_factor >= 0 && options.warmup_start_factor <= 1,
            "WarmupCosineLR: warmup_start_factor must be in [0, 1], got ",
            options.warmup_start_factor);
    require(options.min_lr >= 0, "WarmupCosineLR: min_lr must be >= 0, got ", options.min_lr);
}

double WarmupCosineLR::lr(std::int64_t t, double base_lr) const {
    check_step(t, "WarmupCosineLR");
    const std::int64_t warmup = options_.warmup_steps, total = options_.total_steps;
    if (t < warmup) {
        const double s = options_.warmup_start_factor;
        return base_lr * (s + (1 - s) * static_cast<double>(t) / static_cast<double>(warmup));
    }
    if (t >= total) return options_.min_lr;
    const double progress = static_cast<double>(t - warmup) / static_cast<double>(total - warmup);
    const double min_lr = options_.min_lr;
    return min_lr + (base_lr - min_lr) * (1 + std::cos(std::numbers::pi * progress)) / 2;
}

void apply_lr_schedule(Optimizer& optimizer, const LrSchedule& schedule, std::int64_t t) {
    for (ParamGroup& group : optimizer.param_groups()) group.lr = schedule.lr(t, group.initial_lr);
}

}  // namespace retort
