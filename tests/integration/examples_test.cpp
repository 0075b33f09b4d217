// Each example application end to end, run from its own YAML as a user would (the broker is overridden to
// point at the test's broker, the plugin dir at this build's plugins).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "tables/codec.hpp"

#include <set>

using namespace mephisto::test;

namespace {

std::filesystem::path example(const std::string& name) {
    return std::filesystem::path(MEPHISTO_SOURCE_DIR) / "examples" / name / (name + ".yaml");
}

std::unique_ptr<HostProcess> run_example(const std::string& name, Broker& broker, const TempDir& dir) {
    return start_host(example(name), broker.bootstrap(), dir.path() / (name + ".log"),
                      {"--plugin-dir", example_plugin_dir().string()});
}

}  // namespace

TEST_CASE("hello_world: a greeting sent with `mephisto send` is printed by the greet agent") {
    Broker broker;
    broker.create_topic("greetings", 4);
    TempDir dir;
    auto host = run_example("hello_world", broker, dir);
    HostProcess send({mephisto_binary().string(), "send", "greetings", "hello from the test", "--broker", broker.bootstrap()},
                     dir.path() / "send.log");
    REQUIRE(send.wait(30s) == 0);
    CHECK(host->await_log("[greet] hello from the test", 20s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("transfer_branch: transfers go to the topic of their size, keyed by account, and bad ones are dead-lettered") {
    Broker broker;
    for (auto t : {"transfers", "tiny_transfers", "small_transfers", "large_transfers"}) broker.create_topic(t, 4);
    TempDir dir;
    auto host = run_example("transfer_branch", broker, dir);
    produce(broker.bootstrap(), "transfers",
            {{"a1", R"({"account":"a1","amount":50})", {}, -1},
             {"a2", R"({"account":"a2","amount":500.5})", {}, -1},
             {"a3", R"({"account":"a3","amount":50000})", {}, -1},
             {"a4", R"({"account":"a4"})", {}, -1},
             {"a5", "not json at all", {}, -1}});
    TopicReader tiny(broker.bootstrap(), "tiny_transfers", 4), small(broker.bootstrap(), "small_transfers", 4),
        large(broker.bootstrap(), "large_transfers", 4),
        dead(broker.bootstrap(), "transfer_branch-branch-dead-letter", 4);
    auto one = [](auto& r) { return r.size() >= 1; };
    REQUIRE(tiny.read_until(one, 30s));
    REQUIRE(small.read_until(one, 30s));
    REQUIRE(large.read_until(one, 30s));
    REQUIRE(dead.read_until([](auto& r) { return r.size() >= 2; }, 30s));
    CHECK(tiny.records()[0].key == "a1");
    CHECK(small.records()[0].key == "a2");
    CHECK(large.records()[0].key == "a3");
    std::vector<std::string> dead_keys;
    for (const auto& r : dead.records()) dead_keys.push_back(*r.key);
    std::sort(dead_keys.begin(), dead_keys.end());
    CHECK(dead_keys == std::vector<std::string>{"a4", "a5"});
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("word_split: one event per word, lowercased, keyed by the word") {
    Broker broker;
    broker.create_topic("sentences", 4);
    broker.create_topic("words", 4);
    TempDir dir;
    auto host = run_example("word_split", broker, dir);
    produce(broker.bootstrap(), "sentences", {{std::nullopt, "Hello, world! Hello Mephisto.", {}, -1}});
    TopicReader words(broker.bootstrap(), "words", 4);
    REQUIRE(words.read_until([](auto& r) { return r.size() >= 4; }, 30s));
    words.read_for(300ms);
    std::vector<std::string> got;
    for (const auto& r : words.records()) {
        CHECK(r.key == r.value);
        got.push_back(*r.value);
    }
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::string>{"hello", "hello", "mephisto", "world"});
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("page_views: views grouped by page id are counted in a table whose changelog holds the counts") {
    Broker broker;
    broker.create_topic("page_views", 4);
    TempDir dir;
    auto host = start_host(example("page_views"), broker.bootstrap(), dir.path() / "page_views.log",
                           {"--plugin-dir", example_plugin_dir().string(), "--state-dir", (dir.path() / "state").string()});
    std::vector<Message> views;
    // Keys are random (or absent): only the re-keying by id puts one page's views on one partition.
    for (int i = 0; i < 30; ++i) views.push_back({"user" + std::to_string(i), R"({"id": "home", "user": "u"})", {}, -1});
    for (int i = 0; i < 12; ++i) views.push_back({std::nullopt, R"({"id": "about"})", {}, -1});
    views.push_back({"x", R"({"user": "no id"})", {}, -1});
    produce(broker.bootstrap(), "page_views", views);
    REQUIRE(host->await_log("page home viewed 30 time(s)", 30s));
    REQUIRE(host->await_log("page about viewed 12 time(s)", 30s));
    CHECK(host->await_log("group_by id: the value has no field 'id'", 10s));
    CHECK(host->stop(SIGTERM, 30s) == 0);

    TopicReader changelog(broker.bootstrap(), "page_views-page_views-changelog", 4);
    REQUIRE(changelog.read_to_end(20s));
    std::map<std::string, int64_t> last;
    std::map<std::string, std::set<int32_t>> partitions;
    for (const auto& r : changelog.records()) {
        last[*r.key] = mephisto::decode_int64(*r.value);  // records of one key are in one partition, in order
        partitions[*r.key].insert(r.partition);
    }
    CHECK(last == std::map<std::string, int64_t>{{"about", 12}, {"home", 30}});
    CHECK(partitions["home"].size() == 1);
    CHECK(end_offsets(broker.bootstrap(), "page_views-count_page_views-id-repartition", 4).size() == 4);
}

TEST_CASE("word_count: sentences are split, grouped by word and counted exactly in the word_counts table") {
    Broker broker;
    broker.create_topic("sentences", 4);
    broker.create_topic("words", 4);
    TempDir dir;
    auto host = start_host(example("word_count"), broker.bootstrap(), dir.path() / "word_count.log",
                           {"--plugin-dir", example_plugin_dir().string(), "--state-dir", (dir.path() / "state").string()});
    // 50 sentences over a small vocabulary, in mixed case and with punctuation; the expected counts are
    // computed here from the lowercased words that went in.
    const std::vector<std::string> vocabulary = {"The", "quick", "BROWN", "fox", "jumps", "over", "lazy", "Dog",
                                                 "faust", "Mephisto", "stream", "table", "42"};
    const std::vector<std::string> separators = {" ", ", ", "! ", " -- ", ". "};
    std::vector<Message> sentences;
    std::map<std::string, int64_t> expected;
    uint32_t state = 12345;
    auto next = [&state]() { return state = state * 1103515245u + 12345u, (state >> 16) & 0x7fff; };
    for (int i = 0; i < 50; ++i) {
        std::string sentence;
        const int words = 1 + static_cast<int>(next() % 12);
        for (int w = 0; w < words; ++w) {
            std::string word = vocabulary[next() % vocabulary.size()];
            if (w > 0) sentence += separators[next() % separators.size()];
            sentence += word;
            std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::tolower(c); });
            ++expected[word];
        }
        sentence += ".";
        // Random keys (or none): the split words are keyed by the word, and group_by key re-keys them again.
        sentences.push_back({i % 3 == 0 ? std::nullopt : std::optional<std::string>("s" + std::to_string(i)), sentence, {}, -1});
    }
    sentences.push_back({"empty", "", {}, -1});
    sentences.push_back({"punctuation only", " ,.!? ", {}, -1});
    produce(broker.bootstrap(), "sentences", sentences);

    // The group is the app id; it reads sentences, words and the repartition topic: lag 0 on each, in order.
    std::string report;
    REQUIRE_MESSAGE(await_caught_up(broker.bootstrap(), "word_count", "sentences", 4, 60s, &report), report);
    REQUIRE_MESSAGE(await_caught_up(broker.bootstrap(), "word_count", "words", 4, 60s, &report), report);
    REQUIRE_MESSAGE(await_caught_up(broker.bootstrap(), "word_count", "word_count-count-key-repartition", 4, 60s, &report),
                    report);
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(host->count_in_log("[count]") == 0);  // the hot path is quiet: nothing reached 10 000

    TopicReader changelog(broker.bootstrap(), "word_count-word_counts-changelog", 4);
    REQUIRE(changelog.read_to_end(20s));
    std::map<std::string, int64_t> last;
    for (const auto& r : changelog.records()) last[*r.key] = mephisto::decode_int64(*r.value);
    CHECK(last == expected);
}

TEST_CASE("click_counter: clicks grouped by url add their count (default 1) to click_counts, and one without a url is skipped") {
    Broker broker;
    broker.create_topic("clicks", 4);
    TempDir dir;
    auto host = start_host(example("click_counter"), broker.bootstrap(), dir.path() / "click_counter.log",
                           {"--plugin-dir", example_plugin_dir().string(), "--state-dir", (dir.path() / "state").string()});
    std::vector<Message> clicks;
    for (int i = 0; i < 10; ++i) clicks.push_back({"user" + std::to_string(i), R"({"url": "/home", "user": "u"})", {}, -1});
    for (int i = 0; i < 3; ++i) clicks.push_back({std::nullopt, R"({"url": "/about", "count": 4})", {}, -1});
    clicks.push_back({"x", R"({"user": "no url", "count": 7})", {}, -1});
    clicks.push_back({"y", R"({"url": "/home", "count": 5})", {}, -1});
    clicks.push_back({std::nullopt, R"({"url": "/pricing"})", {}, -1});
    produce(broker.bootstrap(), "clicks", clicks);

    // /home's +5 may come at any point among its ten +1s: its total reaches or passes 10 somewhere in 10..14.
    REQUIRE(host->await_log("] /home 1", 30s));
    REQUIRE(host->await_log("/about 12 clicks", 30s));      // 4 + 4 + 4 passes 10
    CHECK(host->await_log("group_by url: the value has no field 'url'", 10s));
    std::string report;
    REQUIRE_MESSAGE(await_caught_up(broker.bootstrap(), "click_counter", "clicks", 4, 60s, &report), report);
    REQUIRE_MESSAGE(
        await_caught_up(broker.bootstrap(), "click_counter", "click_counter-count_click-url-repartition", 4, 60s, &report),
        report);
    CHECK(host->stop(SIGTERM, 30s) == 0);

    TopicReader changelog(broker.bootstrap(), "click_counter-click_counts-changelog", 4);
    REQUIRE(changelog.read_to_end(20s));
    std::map<std::string, int64_t> last;
    for (const auto& r : changelog.records()) last[*r.key] = mephisto::decode_int64(*r.value);
    CHECK(last == std::map<std::string, int64_t>{{"/about", 12}, {"/home", 15}, {"/pricing", 1}});
}

TEST_CASE("windowed_clicks: one final count per URL per minute, each once, across a restart in mid-minute") {
    Broker broker;
    broker.create_topic("clicks", 1);
    broker.create_topic("clicks_per_minute", 1);
    TempDir dir;
    const std::vector<std::string> args = {"--plugin-dir", example_plugin_dir().string(), "--state-dir",
                                           (dir.path() / "state").string()};
    // Clicks over five minutes, 10 s apart, on three URLs in turn: two per URL per minute.
    const int64_t t0 = 60'000LL * 29'000'000;  // a minute boundary
    auto clicks = [&](int from, int to) {
        std::vector<Message> out;
        for (int i = from; i < to; ++i)
            out.push_back({std::nullopt,
                           "{\"url\": \"/page/" + std::to_string(i % 3) + "\", \"ts\": " + std::to_string(t0 + i * 10'000LL) + "}",
                           {}, -1});
        return out;
    };
    {
        auto host = start_host(example("windowed_clicks"), broker.bootstrap(), dir.path() / "run1.log", args);
        produce(broker.bootstrap(), "clicks", clicks(0, 14));  // up to 2:10: minutes 0 and 1 close
        REQUIRE(await_caught_up(broker.bootstrap(), "windowed_clicks", "clicks", 1, 30s));
        CHECK(host->count_in_log("click(s) in the minute of") == 6);
        CHECK(host->stop(SIGTERM, 30s) == 0);  // minute 2 is open, with 2 of its clicks
    }
    auto host = start_host(example("windowed_clicks"), broker.bootstrap(), dir.path() / "run2.log", args);
    produce(broker.bootstrap(), "clicks", clicks(14, 30));
    produce(broker.bootstrap(), "clicks", {{std::nullopt, "{\"url\": \"/late\", \"ts\": " + std::to_string(t0 + 400'000) + "}", {}, -1}});
    REQUIRE(await_caught_up(broker.bootstrap(), "windowed_clicks", "clicks", 1, 30s));
    CHECK(host->await_log("/page/2: 2 click(s) in the minute of", 10s));
    CHECK(host->stop(SIGTERM, 30s) == 0);

    TopicReader out(broker.bootstrap(), "clicks_per_minute", 1);
    REQUIRE(out.read_to_end(20s));
    std::map<std::pair<std::string, int64_t>, int> windows;  // (url, minute start) -> times reported
    for (const auto& r : out.records()) {
        auto record = nlohmann::json::parse(*r.value);
        CHECK(record["count"] == 2);
        windows[{record["url"].get<std::string>(), record["start"].get<int64_t>()}]++;
    }
    CHECK(windows.size() == 15);  // three URLs, five minutes
    for (const auto& [window, times] : windows) CHECK_MESSAGE(times == 1, window.first << " " << window.second);
}

TEST_CASE("batch_sink: events reach on_batch 100 at a time, the rest after `within`, each written once") {
    Broker broker;
    broker.create_topic("records", 1);
    TempDir dir;
    const auto out = dir.path() / "sink.out";
    std::ifstream source(example("batch_sink"));
    std::string yaml((std::istreambuf_iterator<char>(source)), std::istreambuf_iterator<char>());
    yaml.replace(yaml.find("path: build/batch_sink.out"), 26, "path: " + out.string());
    auto file = dir.write("batch_sink.yaml", yaml);
    auto host = start_host(file, broker.bootstrap(), dir.path() / "batch_sink.log",
                           {"--plugin-dir", example_plugin_dir().string()});
    produce_sequence(broker.bootstrap(), "records", 0, 250, 1, "r");
    REQUIRE(await_caught_up(broker.bootstrap(), "batch_sink", "records", 1, 30s));
    // Committed only after on_batch returned: by now every record is in the file, once.
    std::ifstream written(out);
    std::map<std::string, int> lines;
    for (std::string line; std::getline(written, line);) lines[line]++;
    CHECK(lines.size() == 250);
    for (int i = 0; i < 250; ++i) CHECK(lines["r" + std::to_string(i)] == 1);
    // Batches of at most 100; the 250 were produced at once, so at least one batch was full, and the last one
    // was not: it went when its first event had waited a second.
    const std::string log = host->log();
    std::vector<int> sizes;
    for (size_t at = log.find("wrote a batch of "); at != std::string::npos; at = log.find("wrote a batch of ", at + 1))
        sizes.push_back(std::stoi(log.substr(at + 17)));
    int total = 0;
    for (int n : sizes) {
        CHECK(n <= 100);
        total += n;
    }
    CHECK(total == 250);
    CHECK(std::count(sizes.begin(), sizes.end(), 100) >= 1);
    CHECK(sizes.back() < 100);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("leader_election: one of two hosts greets, and when it leaves, the other takes over") {
    Broker broker;
    broker.create_topic("greetings", 1);
    TempDir dir;
    const std::vector<std::string> args = {"--plugin-dir", example_plugin_dir().string()};
    auto a = start_host(example("leader_election"), broker.bootstrap(), dir.path() / "a.log", args, false);
    auto b = start_host(example("leader_election"), broker.bootstrap(), dir.path() / "b.log", args, false);
    const std::string leads = "this host now leads leader_election";
    REQUIRE(await([&] { return a->count_in_log(leads) + b->count_in_log(leads) == 1; }, 60s));
    auto& leader = a->count_in_log(leads) ? a : b;
    auto& other = a->count_in_log(leads) ? b : a;
    TopicReader greetings(broker.bootstrap(), "greetings", 1);
    REQUIRE(greetings.read_until([](const std::vector<Record>& r) { return !r.empty(); }, 30s));
    CHECK(greetings.records().front().value->find("/" + std::to_string(leader->pid())) != std::string::npos);
    CHECK(leader->stop(SIGTERM, 30s) == 0);
    REQUIRE(other->await_log(leads, 60s));
    const std::string mine = "/" + std::to_string(other->pid());
    REQUIRE(greetings.read_until([&](const std::vector<Record>& r) {
        return std::any_of(r.begin(), r.end(), [&](const Record& x) { return x.value->find(mine) != std::string::npos; });
    }, 30s));
    CHECK(other->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("rpc_add: mephisto ask gets adding's answer, summing asks it about every pair, a cast gets none") {
    Broker broker;
    broker.create_topic("adding", 4);
    broker.create_topic("pairs", 4);
    broker.create_topic("sums", 1);
    TempDir dir;
    auto host = run_example("rpc_add", broker, dir);
    std::string out;
    REQUIRE(run_cli({"ask", "adding", "2 3", "--broker", broker.bootstrap()}, dir, out) == 0);
    CHECK(out.find("5\n") != std::string::npos);

    std::vector<Message> pairs;
    for (int i = 0; i < 20; ++i) pairs.push_back({"k" + std::to_string(i), std::to_string(i) + " 100", {}, -1});
    produce(broker.bootstrap(), "pairs", pairs);
    TopicReader sums(broker.bootstrap(), "sums", 1);
    REQUIRE(sums.read_until([](const std::vector<Record>& r) { return r.size() >= 20; }, 30s));
    const auto counts = sums.value_counts();
    for (int i = 0; i < 20; ++i) CHECK(counts.count(std::to_string(i) + " + 100 = " + std::to_string(i + 100)) == 1);
    REQUIRE(await_caught_up(broker.bootstrap(), "rpc_add", "pairs", 4, 30s));

    produce(broker.bootstrap(), "adding", {{"k", "40 2", {}, -1}});
    CHECK(host->await_log("cast: 40 + 2 = 42", 30s));
    // Nobody reads `nowhere`: the CLI gives up after its timeout, with exit code 3.
    broker.create_topic("nowhere", 1);
    CHECK(run_cli({"ask", "nowhere", "1 2", "--timeout", "1s", "--broker", broker.bootstrap()}, dir, out) == 3);
    CHECK(out.find("no reply within 1000 ms") != std::string::npos);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
