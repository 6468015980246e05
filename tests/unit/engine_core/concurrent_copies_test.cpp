// ConcurrentCopies (engine/concurrent_copies.h): copies grouped by it give, run
// in any order within each group (or with every read of a group before its
// writes, as tiles of one launch may), what running them in plan order gives;
// independent copies share a group; the scheduler's two dependent patterns (a
// finish snapshot then a restore into the freed slot; a snapshot then a restore
// of it) split.
#include "engine/concurrent_copies.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <vector>

namespace tnl {
namespace {

using Slots = std::map<std::pair<int, int>, int>;  // (tier, index) → the value it holds

std::pair<int, int> key(StateRef r) { return {int(r.tier), r.index}; }

StateRef live(int32_t i) { return {StateTier::kLive, i}; }
StateRef cache(int32_t i) { return {StateTier::kCache, i}; }

void run_in_order(const std::vector<StateCopy>& copies, Slots* slots) {
  for (const StateCopy& c : copies) (*slots)[key(c.to)] = (*slots)[key(c.from)];
}

// Every read of the group first, then every write.
void run_reads_first(const std::vector<StateCopy>& group, Slots* slots) {
  std::vector<int> read;
  for (const StateCopy& c : group) read.push_back((*slots)[key(c.from)]);
  for (size_t i = 0; i < group.size(); ++i) (*slots)[key(group[i].to)] = read[i];
}

std::vector<std::vector<StateCopy>> grouped(const std::vector<StateCopy>& copies) {
  std::vector<std::vector<StateCopy>> groups(1);
  ConcurrentCopies current;
  for (const StateCopy& c : copies) {
    if (current.conflicts(c)) {
      groups.emplace_back();
      current.clear();
    }
    current.add(c);
    groups.back().push_back(c);
  }
  return groups;
}

TEST(ConcurrentCopies, GroupsRunInAnyOrderAsThePlanInOrder) {
  std::mt19937 rng(11);
  const std::vector<StateRef> refs = {live(0), live(1), live(2), cache(0), cache(1), cache(2)};
  int64_t multi_copy_groups = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<StateCopy> copies;
    const int n = 1 + int(rng() % 6);
    while (int(copies.size()) < n) {
      const StateRef from = refs[rng() % refs.size()], to = refs[rng() % refs.size()];
      if (!(from == to)) copies.push_back({from, to});
    }
    Slots initial;
    for (size_t i = 0; i < refs.size(); ++i) initial[key(refs[i])] = int(i);
    Slots expected = initial;
    run_in_order(copies, &expected);

    const auto groups = grouped(copies);
    Slots reads_first = initial;
    for (const auto& g : groups) run_reads_first(g, &reads_first);
    ASSERT_EQ(reads_first, expected) << "trial " << trial;
    // Every order within each group (groups hold at most 6 copies).
    Slots permuted = initial;
    for (const auto& g : groups) {
      multi_copy_groups += g.size() > 1;
      std::vector<size_t> order(g.size());
      std::iota(order.begin(), order.end(), 0);
      const Slots before = permuted;
      Slots first_result;
      bool first = true;
      do {
        Slots s = before;
        for (size_t i : order) s[key(g[i].to)] = s[key(g[i].from)];
        if (first) first_result = s;
        ASSERT_EQ(s, first_result) << "trial " << trial << ": a group's result depends on its order";
        first = false;
      } while (std::next_permutation(order.begin(), order.end()));
      permuted = first_result;
    }
    ASSERT_EQ(permuted, expected) << "trial " << trial;
  }
  EXPECT_GT(multi_copy_groups, 1000) << "copies that could share a launch should";
}

TEST(ConcurrentCopies, IndependentCopiesShareOneGroup) {
  // Three snapshots, then two restores of one cached state into other live slots.
  const std::vector<StateCopy> copies = {{live(0), cache(0)}, {live(1), cache(1)}, {live(2), cache(2)},
                                         {cache(3), live(3)}, {cache(3), live(4)}};
  EXPECT_EQ(grouped(copies).size(), 1u);
}

TEST(ConcurrentCopies, TheSchedulersDependentPatternsSplit) {
  // A finished sequence's snapshot, then a restore into the live slot it freed.
  EXPECT_EQ(grouped({{live(3), cache(5)}, {cache(1), live(3)}}).size(), 2u);
  // A snapshot, then a restore of it into another slot.
  EXPECT_EQ(grouped({{live(3), cache(5)}, {cache(5), live(7)}}).size(), 2u);
  // Two copies into one slot: the later one wins.
  EXPECT_EQ(grouped({{live(1), cache(5)}, {live(2), cache(5)}}).size(), 2u);
  ConcurrentCopies c;
  EXPECT_TRUE(c.empty());
  c.add({live(0), cache(0)});
  EXPECT_FALSE(c.empty());
  c.clear();
  EXPECT_FALSE(c.conflicts({cache(0), live(0)}));
}

}  // namespace
}  // namespace tnl
