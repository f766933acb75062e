#include "util/thread_tuner.h"

#include <algorithm>

namespace tinygpt {

namespace {

constexpr int kTrialRounds = 3;        // steps per candidate in a trial
constexpr double kDropFactor = 2.0;    // a candidate this much slower than the best is dropped
constexpr double kTrialBudget = 0.05;  // trials may cost this fraction of the time spent
constexpr int kFirstGap = 16;          // steps between trials: 16, 32, 64, ... at most
constexpr int kLongestGap = 1024;      // ... 1024, unless the chosen count slows down
constexpr int kRecentSteps = 8;        // window that detects a slowdown of the chosen count
constexpr double kSlowdown = 1.5;      // ... by this factor over its trial median

double fastest(const std::vector<double>& v) {
    return *std::min_element(v.begin(), v.end());
}

double median(std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

}  // namespace

ThreadTuner::ThreadTuner(int max_threads) {
    for (int n = 1; n < max_threads; n *= 2) candidates_.push_back(n);
    candidates_.push_back(std::max(1, max_threads));
    trial_.resize(candidates_.size());
    chosen_ = static_cast<int>(candidates_.size()) - 1;
    if (candidates_.size() > 1) start_trial();
}

int ThreadTuner::threads() const {
    return candidates_[trial_at_ >= 0 ? trial_at_ : chosen_];
}

void ThreadTuner::record(double seconds) {
    total_seconds_ += seconds;
    if (candidates_.size() == 1) return;
    if (trial_at_ >= 0) {
        trial_[trial_at_].times.push_back(seconds);
        // Drop every candidate whose best step is far slower than the best step seen, once it
        // has had two steps: one may have been descheduled for a time slice.
        double best = seconds;
        for (const Candidate& c : trial_)
            if (!c.times.empty()) best = std::min(best, fastest(c.times));
        for (Candidate& c : trial_)
            if (c.times.size() >= 2 && fastest(c.times) > kDropFactor * best) c.dropped = true;
        if (!advance_trial()) finish_trial();
        return;
    }
    recent_.push_back(seconds);
    if (recent_.size() > kRecentSteps) recent_.erase(recent_.begin());
    const bool slowed_down =
        recent_.size() == kRecentSteps && median(recent_) > kSlowdown * chosen_typical_;
    const int gap = std::min(kLongestGap, kFirstGap << std::min(trials_, 10));
    const bool due = ++steps_since_trial_ >= gap && trial_cost_ <= kTrialBudget * total_seconds_;
    if (slowed_down || due) start_trial();
}

void ThreadTuner::start_trial() {
    for (Candidate& c : trial_) c = Candidate{};
    trial_round_ = 0;
    trial_at_ = 0;
}

bool ThreadTuner::advance_trial() {
    // Round-robin order: a drift in speed during the trial hits every candidate alike.
    const int n = static_cast<int>(candidates_.size());
    int still_in = 0;
    for (const Candidate& c : trial_) still_in += c.dropped ? 0 : 1;
    if (still_in <= 1) return false;
    do {
        if (++trial_at_ == n) {
            trial_at_ = 0;
            if (++trial_round_ == kTrialRounds) return false;
        }
    } while (trial_[trial_at_].dropped);
    return true;
}

void ThreadTuner::finish_trial() {
    int best = -1;
    for (int c = 0; c < static_cast<int>(trial_.size()); ++c)
        if (!trial_[c].dropped && !trial_[c].times.empty() &&
            (best < 0 || median(trial_[c].times) < median(trial_[best].times)))
            best = c;
    chosen_ = best;
    chosen_typical_ = median(trial_[best].times);
    // What the trial cost: the losers' typical excess, not their descheduled steps (those would
    // have been as slow on the chosen count), or a few time slices would stop all later trials.
    for (const Candidate& c : trial_)
        if (!c.times.empty())
            trial_cost_ += static_cast<double>(c.times.size()) *
                           std::max(0.0, median(c.times) - chosen_typical_);
    recent_.clear();
    steps_since_trial_ = 0;
    trial_at_ = -1;
    ++trials_;
}

}  // namespace tinygpt
