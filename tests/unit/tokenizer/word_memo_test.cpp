// WordMemo: what was added comes back appended; the bound holds by clearing a
// full shard; long words are never kept; concurrent use is safe.
#include "engine/tokenizer/word_memo.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace tnl {
namespace {

TEST(WordMemo, AppendsWhatWasAdded) {
  WordMemo memo(1024);
  std::vector<int32_t> out = {7};
  EXPECT_FALSE(memo.append("river", &out));
  EXPECT_EQ(out, std::vector<int32_t>{7});
  const std::vector<int32_t> ids = {11, 12};
  memo.add("river", ids);
  EXPECT_TRUE(memo.append("river", &out));
  EXPECT_EQ(out, (std::vector<int32_t>{7, 11, 12}));
  EXPECT_FALSE(memo.append("rive", &out)) << "exact words only";
  EXPECT_FALSE(memo.append(" river", &out));
  EXPECT_EQ(memo.size(), 1u);
}

TEST(WordMemo, LongWordsAreNotKept) {
  WordMemo memo(1024);
  const std::string long_word(WordMemo::kMaxWordBytes + 1, 'a');
  memo.add(long_word, std::vector<int32_t>{1});
  std::vector<int32_t> out;
  EXPECT_FALSE(memo.append(long_word, &out));
  EXPECT_EQ(memo.size(), 0u);
  const std::string longest(WordMemo::kMaxWordBytes, 'a');
  memo.add(longest, std::vector<int32_t>{2});
  EXPECT_TRUE(memo.append(longest, &out));
}

TEST(WordMemo, StaysWithinItsBound) {
  WordMemo memo(64);  // 16 shards of 4 words
  for (int i = 0; i < 10000; ++i) memo.add("w" + std::to_string(i), std::vector<int32_t>{i});
  EXPECT_LE(memo.size(), 64u);
  EXPECT_GT(memo.size(), 0u);
  // What is still there is right.
  for (int i = 0; i < 10000; ++i) {
    std::vector<int32_t> out;
    if (memo.append("w" + std::to_string(i), &out)) {
      EXPECT_EQ(out, std::vector<int32_t>{i});
    }
  }
}

TEST(WordMemo, ConcurrentReadersAndWriters) {
  WordMemo memo(256);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&memo, t] {
      for (int i = 0; i < 5000; ++i) {
        const std::string w = "w" + std::to_string((i * 7 + t) % 600);
        std::vector<int32_t> out;
        if (memo.append(w, &out)) {
          ASSERT_EQ(out, std::vector<int32_t>{(i * 7 + t) % 600});
        } else {
          memo.add(w, std::vector<int32_t>{(i * 7 + t) % 600});
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(memo.size(), 256u);
}

}  // namespace
}  // namespace tnl
