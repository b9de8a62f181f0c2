// The monitor's CRI log writer and exit record, on temp files.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/fs.hpp"
#include "monitor/cri_log.hpp"
#include "monitor/exit_record.hpp"

namespace berth::monitor {
namespace {

class CriLogTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/berth-unit-crilog-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/c.log";
    }
    void TearDown() override { (void)remove_all(dir_); }

    // (stream, flag, message) of each record; the timestamp checked for shape.
    std::vector<std::string> records(const std::string& path) {
        auto text = read_file(path);
        EXPECT_TRUE(text.has_value());
        std::vector<std::string> out;
        size_t pos = 0;
        while (text && pos < text->size()) {
            size_t nl = text->find('\n', pos);
            std::string line = text->substr(pos, nl - pos);
            pos = nl + 1;
            EXPECT_GT(line.size(), kTimestampSize);
            EXPECT_EQ(line[10], 'T');
            EXPECT_EQ(line[19], '.');
            EXPECT_EQ(line[29], 'Z');
            EXPECT_EQ(line[30], ' ');
            out.push_back(line.substr(31));
        }
        return out;
    }

    std::string dir_, path_;
};

TEST(Timestamp, Rfc3339WithNineFractionDigits) {
    char buf[kTimestampSize];
    struct timespec ts {
        1700000000, 5
    };
    EXPECT_EQ(std::string(buf, format_timestamp(buf, ts)), "2023-11-14T22:13:20.000000005Z");
    ts = {0, 999999999};
    EXPECT_EQ(std::string(buf, format_timestamp(buf, ts)), "1970-01-01T00:00:00.999999999Z");
}

TEST_F(CriLogTest, LinesBecomeFullRecordsAndTheRestWaits) {
    auto log = CriLogFile::open(path_);
    ASSERT_TRUE(log.has_value());
    LineSplitter s("stdout");
    ASSERT_TRUE(s.feed("one\ntw", *log));
    ASSERT_TRUE(s.feed("o\n\nthree", *log));
    EXPECT_EQ(records(path_), (std::vector<std::string>{"stdout F one", "stdout F two", "stdout F "}));
    ASSERT_TRUE(s.flush(*log));
    ASSERT_TRUE(s.flush(*log));  // nothing left: no second record
    EXPECT_EQ(records(path_).back(), "stdout F three");
    EXPECT_EQ(records(path_).size(), 4u);
}

TEST_F(CriLogTest, LongLinesAreCutIntoPartialRecords) {
    auto log = CriLogFile::open(path_);
    ASSERT_TRUE(log.has_value());
    LineSplitter s("stderr");
    std::string line(2 * kMaxRecord + 10, 'x');
    ASSERT_TRUE(s.feed(line + "\nshort\n", *log));
    auto r = records(path_);
    ASSERT_EQ(r.size(), 4u);
    EXPECT_EQ(r[0], "stderr P " + std::string(kMaxRecord, 'x'));
    EXPECT_EQ(r[1], "stderr P " + std::string(kMaxRecord, 'x'));
    EXPECT_EQ(r[2], "stderr F " + std::string(10, 'x'));
    EXPECT_EQ(r[3], "stderr F short");
}

TEST_F(CriLogTest, ReopenWritesToTheNewFile) {
    auto log = CriLogFile::open(path_);
    ASSERT_TRUE(log.has_value());
    ASSERT_TRUE(log->write_record("stdout", false, "before"));
    ASSERT_EQ(::rename(path_.c_str(), (path_ + ".1").c_str()), 0);
    ASSERT_TRUE(log->reopen());
    ASSERT_TRUE(log->write_record("stdout", false, "after"));
    EXPECT_EQ(records(path_ + ".1"), std::vector<std::string>{"stdout F before"});
    EXPECT_EQ(records(path_), std::vector<std::string>{"stdout F after"});
}

TEST_F(CriLogTest, OpenErrorNamesThePath) {
    auto log = CriLogFile::open(dir_ + "/missing/c.log");
    ASSERT_FALSE(log.has_value());
    EXPECT_NE(log.error().message().find(dir_ + "/missing/c.log"), std::string::npos);
}

TEST_F(CriLogTest, ExitRecordRoundTrip) {
    ExitRecord r = exit_record_from_status(9);  // killed by SIGKILL
    EXPECT_EQ(r.signal, 9);
    EXPECT_EQ(r.exit_code, 137);
    r.oom_killed = true;
    r.started_at = "2026-01-01T00:00:00.000000001Z";
    r.finished_at = "2026-01-01T00:00:01.000000001Z";
    ASSERT_TRUE(write_exit_record(dir_, r));
    auto back = read_exit_record(dir_);
    ASSERT_TRUE(back.has_value()) << back.error().message();
    EXPECT_EQ(back->exit_code, 137);
    EXPECT_EQ(back->signal, 9);
    EXPECT_TRUE(back->oom_killed);
    EXPECT_EQ(back->started_at, r.started_at);
    EXPECT_EQ(back->finished_at, r.finished_at);
    ExitRecord e = exit_record_from_status(3 << 8);  // exit(3)
    EXPECT_EQ(e.exit_code, 3);
    EXPECT_EQ(e.signal, 0);
    EXPECT_EQ(to_json(e).find("signal"), std::string::npos);
}

TEST(ExitRecord, BadRecordsAreErrors) {
    EXPECT_FALSE(parse_exit_record("not json"));
    EXPECT_FALSE(parse_exit_record(R"({"oom_killed":false,"finished_at":"x"})"));
    auto wrong = parse_exit_record(R"({"exit_code":"1","oom_killed":false,"finished_at":"x"})");
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message().find("exit_code"), std::string::npos);
}

}  // namespace
}  // namespace berth::monitor
