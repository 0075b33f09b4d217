// The status page's history (host/sample_history): events/s from the counters between two samples, a counter that
// went back (a restarted pipeline) counted from zero, the ring bounded to 15 minutes, and a pipeline gone for
// longer dropped.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "host/sample_history.hpp"

using namespace mephisto;

namespace {

struct Readings {
    std::vector<SampleHistory::Reading> now;
    SampleHistory history{[this] { return now; }};
};

}  // namespace

TEST_CASE("sample history: events/s between two samples, the lag as read") {
    Readings r;
    r.now = {{"a", 100, 7}};
    r.history.sample(10'000);
    CHECK(r.history.snapshot()["a"].empty());  // a rate needs two readings
    r.now = {{"a", 600, 3}};
    r.history.sample(10'500);
    r.now = {{"a", 600, -1}};
    r.history.sample(11'500);
    const auto samples = r.history.snapshot()["a"];
    REQUIRE(samples.size() == 2);
    CHECK(samples[0].at_ms == 10'500);
    CHECK(samples[0].events_per_s == doctest::Approx(1000.0));  // 500 events in 0.5 s
    CHECK(samples[0].lag == 3);
    CHECK(samples[1].events_per_s == 0.0);
    CHECK(samples[1].lag == -1);
}

TEST_CASE("sample history: a counter that went back is a restarted pipeline, counting from zero") {
    Readings r;
    r.now = {{"a", 5'000, 0}};
    r.history.sample(1'000);
    r.now = {{"a", 40, 0}};
    r.history.sample(2'000);
    CHECK(r.history.snapshot()["a"].back().events_per_s == doctest::Approx(40.0));
}

TEST_CASE("sample history: 15 minutes at most, and a pipeline gone that long leaves") {
    Readings r;
    int64_t t = 0;
    for (size_t i = 0; i < SampleHistory::kSamples + 50; ++i) {
        r.now = {{"a", i * 10, 0}};
        if (i < 10) r.now.push_back({"b", i, 0});
        r.history.sample(t += 1000);
    }
    auto all = r.history.snapshot();
    CHECK(all["a"].size() == SampleHistory::kSamples);
    CHECK(all["a"].front().at_ms == t - static_cast<int64_t>(SampleHistory::kSamples - 1) * 1000);
    CHECK(all["a"].back().events_per_s == doctest::Approx(10.0));
    CHECK(!all.count("b"));  // its last reading is more than 15 minutes old
}
