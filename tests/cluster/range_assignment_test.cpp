// The range assignment computed from member ids (cluster/range_assignment): it must be librdkafka's, so that any
// host can tell who owns a partition and who takes it when its owner leaves. The group's real assignment is
// compared with it in cluster_view_test; here its arithmetic, on librdkafka's own example and exhaustively.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "cluster/range_assignment.hpp"

using namespace mephisto;

TEST_CASE("range assignment: librdkafka's example, two members and three partitions") {
    // rdkafka_range_assignor.c: C0 gets p0 and p1, C1 gets p2.
    const std::vector<std::string> members = {"C1", "C0"};  // any order: sorted by id
    CHECK(range_owner(members, 0, 3) == "C0");
    CHECK(range_owner(members, 1, 3) == "C0");
    CHECK(range_owner(members, 2, 3) == "C1");
}

TEST_CASE("range assignment: members sort as bytes, the first ones get the extra partitions") {
    const std::vector<std::string> members = {"beta", "Alpha", "alpha"};  // 'A' < 'a' < 'b'
    std::vector<std::string> owners;
    for (int32_t p = 0; p < 8; ++p) owners.push_back(range_owner(members, p, 8));
    CHECK(owners == std::vector<std::string>{"Alpha", "Alpha", "Alpha", "alpha", "alpha", "alpha", "beta", "beta"});
    // More members than partitions: the last members get none.
    CHECK(range_owner({"a", "b", "c", "d", "e"}, 1, 2) == "b");
    CHECK_FALSE(range_owner_index(2, 2, 5));
    CHECK(range_owner({}, 0, 4).empty());
}

TEST_CASE("range assignment: every partition has one owner, in consecutive runs whose sizes differ by one at most") {
    for (size_t members = 1; members <= 12; ++members)
        for (int partitions = 0; partitions <= 40; ++partitions) {
            std::map<size_t, std::vector<int32_t>> held;
            for (int32_t p = 0; p < partitions; ++p) {
                const auto owner = range_owner_index(p, partitions, members);
                REQUIRE(owner);
                REQUIRE(*owner < members);
                held[*owner].push_back(p);
            }
            size_t smallest = partitions, largest = 0, previous_end = 0;
            for (size_t m = 0; m < members; ++m) {
                const auto& run = held[m];
                smallest = std::min(smallest, run.size());
                largest = std::max(largest, run.size());
                if (run.empty()) continue;
                CHECK(static_cast<size_t>(run.front()) == previous_end);  // in member order, no gaps
                CHECK(static_cast<size_t>(run.back() - run.front() + 1) == run.size());
                previous_end = static_cast<size_t>(run.back()) + 1;
            }
            CHECK(largest - smallest <= 1);
            if (largest > smallest)  // the larger runs come first
                for (size_t m = 1; m < members; ++m) CHECK(held[m - 1].size() >= held[m].size());
        }
}

TEST_CASE("range assignment: a partition's successors are who owns it as its owners leave, never the owner") {
    const std::vector<std::string> members = {"a", "b", "c"};
    // a owns 0-1, b 2-3, c 4-5. Without a: b owns 0-2, c 3-5. Without a and b: c owns all.
    CHECK(range_successors(members, 0, 6, 1) == std::vector<std::string>{"b"});
    CHECK(range_successors(members, 0, 6, 5) == std::vector<std::string>{"b", "c"});
    CHECK(range_successors(members, 3, 6, 1) == std::vector<std::string>{"c"});
    CHECK(range_successors(members, 5, 6, 2) == std::vector<std::string>{"b", "a"});  // without c: a 0-2, b 3-5
    CHECK(range_successors({"a"}, 0, 6, 1).empty());
    // What the successor computes is what the owner's departure gives: the assignment over the others.
    for (int32_t p = 0; p < 6; ++p) {
        const std::string owner = range_owner(members, p, 6);
        std::vector<std::string> others;
        for (const auto& m : members)
            if (m != owner) others.push_back(m);
        CHECK(range_successors(members, p, 6, 1).front() == range_owner(others, p, 6));
    }
}

TEST_CASE("range assignment: a member keeps the standbys of the partitions it would take over, never its own") {
    const std::vector<std::string> members = {"a", "b", "c"};
    // 8 partitions: a owns 0-2, b 3-5, c 6-7. Without a: b 0-3, c 4-7. Without b: a 0-3, c 4-7. Without c: a 0-3,
    // b 4-7.
    CHECK(standby_partitions(members, "a", 8, 1) == std::vector<int32_t>{3});
    CHECK(standby_partitions(members, "b", 8, 1) == std::vector<int32_t>{0, 1, 2, 6, 7});
    CHECK(standby_partitions(members, "c", 8, 1) == std::vector<int32_t>{4, 5});
    // Two replicas: every partition on both other members.
    CHECK(standby_partitions(members, "a", 8, 2) == std::vector<int32_t>{3, 4, 5, 6, 7});
    CHECK(standby_partitions(members, "a", 8, 0).empty());
    CHECK(standby_partitions({"a"}, "a", 8, 1).empty());  // alone: nowhere to take over from
    // Each partition has exactly `replicas` standbys when there are enough members, none on its owner.
    const std::vector<std::string> five = {"m1", "m2", "m3", "m4", "m5"};
    for (int replicas = 1; replicas <= 4; ++replicas) {
        std::map<int32_t, int> count;
        for (const auto& m : five)
            for (int32_t p : standby_partitions(five, m, 12, replicas)) {
                CHECK(range_owner(five, p, 12) != m);
                ++count[p];
            }
        for (int32_t p = 0; p < 12; ++p) CHECK(count[p] == replicas);
    }
}

TEST_CASE("range assignment: a joining member's share, known before it joins when ids are known") {
    // b joins a and c: a owns 0-2, b 3-5, c 6-7.
    CHECK(owned_partitions({"a", "c", "b"}, "b", 8) == std::vector<int32_t>{3, 4, 5});
    CHECK(owned_partitions({"a"}, "a", 3) == std::vector<int32_t>{0, 1, 2});
    CHECK(owned_partitions({"a", "b", "c", "d"}, "d", 3).empty());  // more members than partitions
    // Every partition has exactly one owner.
    const std::vector<std::string> five = {"m1", "m2", "m3", "m4", "m5"};
    std::map<int32_t, int> owners;
    for (const auto& m : five)
        for (int32_t p : owned_partitions(five, m, 12)) ++owners[p];
    CHECK(owners.size() == 12);
    for (const auto& [p, n] : owners) CHECK(n == 1);
}

TEST_CASE("range assignment: which ordering of ids explains what each member holds") {
    // Held as the range assignor gives them by these ids.
    CHECK(range_explains({{"a", {0, 1, 2}}, {"b", {3, 4, 5}}, {"c", {6, 7}}}));
    CHECK(range_explains({{"solo", {0, 1, 2, 3}}}));
    // The same holdings under ids that sort the other way round: not this ordering.
    CHECK(!range_explains({{"z", {0, 1, 2}}, {"y", {3, 4, 5}}, {"x", {6, 7}}}));
    // A partition held twice, one missing, one out of range, nothing held.
    CHECK(!range_explains({{"a", {0, 1}}, {"b", {1}}}));
    CHECK(!range_explains({{"a", {0, 2}}}));
    CHECK(!range_explains({{"a", {0}}, {"b", {5}}}));
    CHECK(!range_explains({}));
    CHECK(!range_explains({{"a", {}}}));
    // More members than partitions: the last hold none.
    CHECK(range_explains({{"a", {0}}, {"b", {1}}, {"c", {}}}));
    CHECK(!range_explains({{"a", {}}, {"b", {0}}, {"c", {1}}}));
}
