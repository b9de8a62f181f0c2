#include "args.hpp"

#include <gtest/gtest.h>

namespace berth::cli {
namespace {

const std::vector<FlagSpec> kSpecs = {
    {{"bundle", "b"}, true, ""}, {{"detach", "d"}, false, ""}, {{"preserve-fds"}, true, ""}};

TEST(Args, RuncStyleFlags) {
    std::vector<std::string> args = {"berth", "-b", "/x", "--detach", "--preserve-fds=2", "id1"};
    auto f = parse_flags(kSpecs, args, 1, false);
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ(f->value("bundle"), "/x");
    EXPECT_TRUE(f->flag("detach"));
    EXPECT_EQ(f->value("preserve-fds"), "2");
    EXPECT_EQ(f->positional, std::vector<std::string>{"id1"});
}

TEST(Args, SingleDashLongNamesAndBooleanValues) {
    std::vector<std::string> args = {"x", "-bundle", "/y", "--detach=false", "id"};
    auto f = parse_flags(kSpecs, args, 1, false);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->value("bundle"), "/y");
    EXPECT_FALSE(f->flag("detach"));
}

TEST(Args, StopsAtFirstPositionalWhenAsked) {
    std::vector<std::string> args = {"x", "-d", "id", "sh", "-c", "echo"};
    auto f = parse_flags(kSpecs, args, 1, true);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->positional, (std::vector<std::string>{"id", "sh", "-c", "echo"}));
}

TEST(Args, RepeatedFlagsKeepEveryValue) {
    std::vector<std::string> args = {"x", "-b", "/one", "--bundle=/two", "id"};
    auto f = parse_flags(kSpecs, args, 1, false);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->value("bundle"), "/two");
    EXPECT_EQ(f->all("bundle"), (std::vector<std::string>{"/one", "/two"}));
    EXPECT_TRUE(f->all("detach").empty());
}

TEST(Args, ErrorsNameTheFlag) {
    std::vector<std::string> unknown = {"x", "--nope", "id"};
    auto f = parse_flags(kSpecs, unknown, 1, false);
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message().find("nope"), std::string::npos);
    std::vector<std::string> missing = {"x", "--bundle"};
    auto g = parse_flags(kSpecs, missing, 1, false);
    ASSERT_FALSE(g);
    EXPECT_NE(g.error().message().find("bundle"), std::string::npos);
    std::vector<std::string> badbool = {"x", "--detach=maybe"};
    EXPECT_FALSE(parse_flags(kSpecs, badbool, 1, false));
}

}  // namespace
}  // namespace berth::cli
