// distill/progress.cpp: the training run's console output (see progress.h). ANSI "\033[K"
// clears what is left of a longer previous line after '\r'; every terminal emulator in use
// understands it.
#include "distill/progress.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace retort {

namespace {

std::string clock_text(double seconds) {
    const long long s = std::llround(std::max(0.0, seconds));
    char buffer[48];
    if (s >= 3600)
        std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
        std::snprintf(buffer, sizeof buffer, "%lld:%02lld", s / 60, s % 60);
    return buffer;
}

std::string fixed(double x, int decimals) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, x);
    return buffer;
}

}  // namespace

void ProgressPrinter::begin_epoch(std::int64_t epoch, std::int64_t epochs, std::int64_t steps,
                                  std::int64_t steps_done) {
    epoch_ = epoch;
    epochs_ = epochs;
    steps_ = steps;
    steps_done_ = steps_done;
    last_draw_ = -1;
}

std::string ProgressPrinter::line(std::int64_t step, double loss, double lr, std::int64_t images,
                                  double seconds) const {
    const double rate = seconds > 0 ? images / seconds : 0;
    // Seconds per step from the steps this process has timed, not from all of the epoch's.
    const std::int64_t timed = step - steps_done_;
    const double eta = timed > 0 ? seconds / timed * (steps_ - step) : 0;
    char lr_text[32];
    std::snprintf(lr_text, sizeof lr_text, "%.4g", lr);
    return cat("epoch ", epoch_, "/", epochs_, "  step ", step, "/", steps_, "  loss ",
               fixed(loss, 4), "  lr ", lr_text, "  ", fixed(rate, 0), " img/s  ETA ",
               clock_text(eta));
}

void ProgressPrinter::draw(const std::string& text) {
    std::fprintf(out_, "\r%s\033[K", text.c_str());
    std::fflush(out_);
    line_open_ = true;
}

void ProgressPrinter::step(std::int64_t step, double loss, double lr, std::int64_t images,
                           double seconds) {
    if (!out_) return;
    if (live_) {
        // Redrawing more often than ~10 times a second only costs time.
        if (step != steps_ && last_draw_ >= 0 && seconds - last_draw_ < 0.1) return;
        last_draw_ = seconds;
        draw(line(step, loss, lr, images, seconds));
    } else if (step % log_every_ == 0 || step == steps_) {
        std::fprintf(out_, "%s\n", line(step, loss, lr, images, seconds).c_str());
        std::fflush(out_);
    }
}

void ProgressPrinter::evaluating(const std::string& split) {
    if (out_ && live_) draw(cat("epoch ", epoch_, "/", epochs_, "  evaluating ", split, " ..."));
}

void ProgressPrinter::message(const std::string& text) {
    if (!out_) return;
    if (line_open_) std::fprintf(out_, "\r\033[K");
    line_open_ = false;
    std::fprintf(out_, "%s\n", text.c_str());
    std::fflush(out_);
}

void ProgressPrinter::end_epoch(const EpochSummary& s) {
    std::string text = cat("epoch ", s.epoch, "/", s.epochs, ": train loss ", fixed(s.train_loss, 4));
    if (s.val_top1 >= 0) text += cat(", val top1 ", fixed(s.val_top1, 2), "%");
    if (s.test_top1 >= 0) text += cat(", test top1 ", fixed(s.test_top1, 2), "%");
    text += cat(", ", fixed(s.seconds, 1), " s, ", fixed(s.images_per_second, 0), " img/s");
    if (s.best) text += " (best)";
    message(text);
}

}  // namespace retort
