// bench::ParseNumber / ParseNumbers (bench/bench_util.h): the benchmarks' flags are read whole
// and within range, or refused with the flag named and the reason; never read as a prefix.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "bench/bench_util.h"

namespace casebus::bench {
namespace {

std::string Refusal(const std::string& flag, const std::string& text) {
  try {
    (void)ParseNumber<int>(flag, text, 1, 100);
  } catch (const ArgError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(BenchArgsTest, AWholeNumberInRangeIsRead) {
  EXPECT_EQ(ParseNumber<int>("--runs", "5", 1, 16), 5);
  EXPECT_EQ(ParseNumber<int>("--runs", "16", 1, 16), 16);
  EXPECT_EQ(ParseNumber<uint64_t>("--open", "5000000", 1, 1'000'000'000), 5'000'000u);
  EXPECT_DOUBLE_EQ(ParseNumber<double>("--reserve-gib", "2.5", 0.0, 1024.0), 2.5);
}

TEST(BenchArgsTest, APrefixOrAnythingOutOfRangeIsRefusedByName) {
  EXPECT_EQ(Refusal("--runs", "12x"), "--runs: '12x' is not a whole number from 1 to 100");
  EXPECT_EQ(Refusal("--runs", "1e6"), "--runs: '1e6' is not a whole number from 1 to 100");
  EXPECT_EQ(Refusal("--runs", ""), "--runs: '' is not a whole number from 1 to 100");
  EXPECT_EQ(Refusal("--runs", "0"), "--runs: '0' is not a whole number from 1 to 100");
  EXPECT_EQ(Refusal("--runs", "101"), "--runs: '101' is not a whole number from 1 to 100");
  EXPECT_EQ(Refusal("--runs", " 5"), "--runs: ' 5' is not a whole number from 1 to 100");
  EXPECT_THROW((void)ParseNumber<uint64_t>("--open", "-1", 1, 1'000'000'000), ArgError);
  EXPECT_THROW((void)ParseNumber<uint64_t>("--open", "99999999999999999999", 1, UINT64_MAX), ArgError);
  EXPECT_THROW((void)ParseNumber<double>("--reserve-gib", "nan", 0.0, 1024.0), ArgError);
  EXPECT_THROW((void)ParseNumber<double>("--reserve-gib", "3GiB", 0.0, 1024.0), ArgError);
}

TEST(BenchArgsTest, AListIsReadWholeOrRefusedAtItsBadItem) {
  EXPECT_EQ(ParseNumbers<uint64_t>("--open", "1000000,5000000", 1, 1'000'000'000),
            (std::vector<uint64_t>{1'000'000, 5'000'000}));
  try {
    (void)ParseNumbers<uint64_t>("--open", "1000000,5M", 1, 1'000'000'000);
    ADD_FAILURE() << "5M accepted";
  } catch (const ArgError& e) {
    EXPECT_STREQ(e.what(), "--open: '5M' is not a whole number from 1 to 1000000000");
  }
  EXPECT_THROW((void)ParseNumbers<uint64_t>("--open", "", 1, 10), ArgError);
  EXPECT_THROW((void)ParseNumbers<uint64_t>("--open", "1,,2", 1, 10), ArgError);
}

}  // namespace
}  // namespace casebus::bench
