#include <gtest/gtest.h>

#include <random>

#include "engine/sampling/sampler.h"

namespace tnl {
namespace {

struct Streamed {
  std::string text;  // everything emitted, flush included
  bool stopped = false;
};

Streamed stream(StopMatcher& matcher, const std::vector<std::string>& pushes) {
  Streamed out;
  for (const auto& piece : pushes) {
    bool stopped = false;
    out.text += matcher.push(piece, &stopped);
    out.stopped = out.stopped || stopped;
  }
  out.text += matcher.flush();
  return out;
}

TEST(StopMatcherTest, NoStopsPassesTextThrough) {
  StopMatcher matcher({});
  bool stopped = true;
  EXPECT_EQ(matcher.push("Hello", &stopped), "Hello");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcherTest, StopInsideOnePush) {
  StopMatcher matcher({"STOP"});
  bool stopped = false;
  EXPECT_EQ(matcher.push("Hello STOP world", &stopped), "Hello ");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(matcher.matched_stop(), "STOP");
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcherTest, StopSpanningPushesIsHeldThenDropped) {
  StopMatcher matcher({"STOP"});
  bool stopped = false;
  EXPECT_EQ(matcher.push("Hel", &stopped), "Hel");
  EXPECT_EQ(matcher.push("lo ST", &stopped), "lo ");  // "ST" might begin "STOP"
  EXPECT_FALSE(stopped);
  EXPECT_EQ(matcher.push("O", &stopped), "");
  EXPECT_EQ(matcher.push("P and more", &stopped), "");
  EXPECT_TRUE(stopped);
  // After a stop nothing more comes out.
  EXPECT_EQ(matcher.push("later", &stopped), "");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcherTest, HeldTextIsReleasedWhenItStopsMatching) {
  StopMatcher matcher({"STOP"});
  bool stopped = false;
  EXPECT_EQ(matcher.push("a ST", &stopped), "a ");
  EXPECT_EQ(matcher.push("ART", &stopped), "START");
  EXPECT_FALSE(stopped);
}

TEST(StopMatcherTest, OverlappingPrefixes) {
  // "aab" after "aa…": only the last two a's can still begin the stop string.
  StopMatcher matcher({"aab"});
  bool stopped = false;
  EXPECT_EQ(matcher.push("a", &stopped), "");
  EXPECT_EQ(matcher.push("a", &stopped), "");
  EXPECT_EQ(matcher.push("a", &stopped), "a");
  EXPECT_EQ(matcher.push("b", &stopped), "");
  EXPECT_TRUE(stopped);

  StopMatcher repeating({"abab"});
  const auto out = stream(repeating, {"xab", "a", "bab"});
  EXPECT_EQ(out.text, "x");
  EXPECT_TRUE(out.stopped);
}

TEST(StopMatcherTest, MultipleStopsEarliestWins) {
  StopMatcher matcher({"\n\n", "END"});
  const auto out = stream(matcher, {"one END two\n\nthree"});
  EXPECT_EQ(out.text, "one ");
  EXPECT_EQ(matcher.matched_stop(), "END");

  StopMatcher other({"\n\n", "END"});
  EXPECT_EQ(stream(other, {"para\n", "\nEND"}).text, "para");
  EXPECT_EQ(other.matched_stop(), "\n\n");

  // At the same position the longer stop string wins.
  StopMatcher nested({"ab", "abc"});
  EXPECT_EQ(stream(nested, {"zabc"}).text, "z");
  EXPECT_EQ(nested.matched_stop(), "abc");
}

TEST(StopMatcherTest, HoldsForTheLongestPossibleStop) {
  StopMatcher matcher({"ab", "xyz"});
  bool stopped = false;
  EXPECT_EQ(matcher.push("1x", &stopped), "1");
  EXPECT_EQ(matcher.push("y", &stopped), "");
  EXPECT_EQ(matcher.push("a", &stopped), "xy");
  EXPECT_EQ(matcher.flush(), "a");
}

TEST(StopMatcherTest, FlushReturnsTheHeldTail) {
  StopMatcher matcher({"STOP"});
  bool stopped = false;
  EXPECT_EQ(matcher.push("Hello S", &stopped), "Hello ");
  EXPECT_EQ(matcher.flush(), "S");
  EXPECT_EQ(matcher.flush(), "");
  EXPECT_EQ(matcher.matched_stop(), "");
}

TEST(StopMatcherTest, EmptyStopStringsAreIgnored) {
  StopMatcher matcher({"", "END"});
  EXPECT_EQ(stream(matcher, {"abc", "def"}).text, "abcdef");
}

TEST(StopMatcherTest, MultibyteStopStrings) {
  StopMatcher matcher({"世界"});
  bool stopped = false;
  EXPECT_EQ(matcher.push("你好世", &stopped), "你好");  // the whole "世" is held
  EXPECT_EQ(matcher.push("界!", &stopped), "");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcherTest, RandomStreamsEmitExactlyTheTextBeforeTheFirstStop) {
  std::mt19937_64 rng(99);
  const std::vector<std::string> stops = {"aba", "bb", "cab"};
  for (int trial = 0; trial < 500; ++trial) {
    std::string text;
    const size_t length = rng() % 40;
    for (size_t i = 0; i < length; ++i) text += "abc"[rng() % 3];
    std::vector<std::string> pushes;
    for (size_t at = 0; at < text.size();) {
      const size_t n = std::min<size_t>(1 + rng() % 4, text.size() - at);
      pushes.push_back(text.substr(at, n));
      at += n;
    }
    size_t first = std::string::npos;
    for (const auto& stop : stops) first = std::min(first, text.find(stop));

    StopMatcher matcher(stops);
    const auto out = stream(matcher, pushes);
    EXPECT_EQ(out.text, text.substr(0, first)) << "text " << text;
    EXPECT_EQ(out.stopped, first != std::string::npos) << "text " << text;
  }
}

}  // namespace
}  // namespace tnl
