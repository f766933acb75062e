// Picks the thread count of a repeated, equal-sized step (a decode step) by timing it.
//
// Why: a decode step is a fraction of a millisecond of work split into dozens of parallel
// regions. On a small model the synchronisation costs more than a second thread gains; on a
// large one two threads read memory faster than one; and when other processes keep the cores
// busy, a region still waits for a share whose thread the kernel descheduled in the middle of it
// (tens of milliseconds), so one thread can beat two. No fixed rule is right on every machine and
// load, so the tuner tries the candidates (1, 2, 4, ... up to the maximum) and keeps the fastest by
// median step time: on a shared machine the kernel deschedules one of the threads now and then, and
// that step takes a time slice longer whatever the count, so one such step in a trial of three must
// not decide it (by the mean it did, in traces of a d512 MoE under load: BENCHMARKS.md, "The decode
// tuner on a shared machine"). It tries again soon when the chosen count slows down (the load
// changed: the median of its latest steps, so stalls on most steps are seen), and otherwise at
// doubling intervals and only while trials have cost under 5% of the time spent, so a count that
// keeps losing costs little; a candidate more than twice as slow as the best is dropped from a
// trial after two steps (after one, a descheduled step dropped two threads under load).
//
// Only steps whose result does not depend on the thread count may be tuned this way (decode
// steps: tested in test_inference.cpp), so that seeded output stays reproducible.
#pragma once
#include <vector>

namespace tinygpt {

class ThreadTuner {
  public:
    explicit ThreadTuner(int max_threads);

    int threads() const;                                 // the count to run the next step with
    void record(double seconds);                         // the time that step took
    int chosen() const { return candidates_[chosen_]; }  // the count in use between trials
    int trials() const { return trials_; }               // how many times it compared counts

  private:
    struct Candidate {
        std::vector<double> times;  // during the current trial
        bool dropped = false;       // lost by far in this trial: no more steps for it
    };
    void start_trial();
    bool advance_trial();  // moves to the next candidate still in; false when the trial is over
    void finish_trial();

    std::vector<int> candidates_;
    std::vector<Candidate> trial_;
    int chosen_ = 0;     // index into candidates_
    int trial_at_ = -1;  // candidate whose step is next in the trial; -1: not in a trial
    int trial_round_ = 0;
    double chosen_typical_ = 0.0;  // the chosen count's median step time in the last trial
    std::vector<double> recent_;   // the chosen count's latest step times
    int steps_since_trial_ = 0;
    double total_seconds_ = 0.0;  // all steps
    double trial_cost_ = 0.0;     // time trials spent beyond what the chosen count would take
    int trials_ = 0;
};

}  // namespace tinygpt
