#include <gtest/gtest.h>
#include "tests/support/test_city.h"
TEST(Smoke, Loads) { EXPECT_EQ(casebus::testing::SmallCity()->name(), "Testville"); EXPECT_GT(casebus::testing::SampleCity()->grids_size(), 10); }
