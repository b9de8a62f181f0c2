// berthctl's parsers and printers without a daemon: the CRI log reader behind `logs`, YAML config files, -o yaml,
// the table formatter.
// clang-format off
#include "cri/api.hpp"  // before gtest, which pulls <signal.h>: see src/cri/api.hpp
// clang-format on
#include <gtest/gtest.h>

#include <deque>

#include "config_file.hpp"
#include "cri_log_reader.hpp"
#include "flags.hpp"
#include "output.hpp"

namespace berth::ctl {
namespace {

namespace v1 = ::runtime::v1;

// ---- CRI log records ----

TEST(CriLogReader, ParsesFullAndPartialRecords) {
    auto r = parse_log_record("2026-01-02T03:04:05.123456789Z stdout F hello world");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->timestamp, "2026-01-02T03:04:05.123456789Z");
    EXPECT_EQ(r->stream, "stdout");
    EXPECT_FALSE(r->partial);
    EXPECT_EQ(r->message, "hello world");
    EXPECT_EQ(r->time_ns, 1767323045123456789);

    auto p = parse_log_record("2026-01-02T03:04:05Z stderr P  two spaces kept ");
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_TRUE(p->partial);
    EXPECT_EQ(p->stream, "stderr");
    EXPECT_EQ(p->message, " two spaces kept ");

    auto empty = parse_log_record("2026-01-02T03:04:05Z stdout F");
    ASSERT_TRUE(empty) << empty.error().message();
    EXPECT_EQ(empty->message, "");
}

TEST(CriLogReader, RejectsMalformedRecordsNamingThePart) {
    auto bad_stream = parse_log_record("2026-01-02T03:04:05Z stdin F x");
    ASSERT_FALSE(bad_stream);
    EXPECT_NE(bad_stream.error().message().find("stream \"stdin\""), std::string::npos);
    auto bad_tag = parse_log_record("2026-01-02T03:04:05Z stdout X x");
    ASSERT_FALSE(bad_tag);
    EXPECT_NE(bad_tag.error().message().find("tag \"X\""), std::string::npos);
    EXPECT_FALSE(parse_log_record("not a timestamp stdout F x"));
    EXPECT_FALSE(parse_log_record("2026-01-02T03:04:05Z"));
    EXPECT_FALSE(parse_log_record(""));
}

TEST(CriLogReader, Rfc3339WithOffsetsAndFractions) {
    auto utc = parse_rfc3339("1970-01-01T00:00:01.5Z");
    ASSERT_TRUE(utc);
    EXPECT_EQ(*utc, 1'500'000'000);
    auto plus = parse_rfc3339("1970-01-01T02:00:00+02:00");
    ASSERT_TRUE(plus);
    EXPECT_EQ(*plus, 0);
    auto minus = parse_rfc3339("1969-12-31T23:00:00-01:00");
    ASSERT_TRUE(minus);
    EXPECT_EQ(*minus, 0);
    EXPECT_FALSE(parse_rfc3339("2026-02-30T00:00:00Z"));  // no such date
    EXPECT_FALSE(parse_rfc3339("2026-01-02T03:04:05"));   // no zone
    EXPECT_FALSE(parse_rfc3339("2026-01-02T03:04:05.Z"));
}

TEST(CriLogReader, SinceTakesTimesAndDurations) {
    const int64_t now = 10'000'000'000'000;
    EXPECT_EQ(parse_since("90s", now).value(), now - 90'000'000'000);
    EXPECT_EQ(parse_since("1h30m", now).value(), now - 5'400'000'000'000);
    EXPECT_EQ(parse_since("250ms", now).value(), now - 250'000'000);
    EXPECT_EQ(parse_since("1970-01-01T00:00:02Z", now).value(), 2'000'000'000);
    EXPECT_FALSE(parse_since("5d", now));
    EXPECT_FALSE(parse_since("soon", now));
    EXPECT_FALSE(parse_since("", now));
}

TEST(CriLogReader, JoinsPartialRecordsPerStream) {
    LogFileParser parser;
    std::deque<LogLine> lines;
    // stdout's line is split in three records with a stderr line in between; the last record is cut mid-way.
    parser.feed(
        "2026-01-02T03:04:05.000000001Z stdout P abc\n"
        "2026-01-02T03:04:05.000000002Z stderr F oops\n"
        "2026-01-02T03:04:05.000000003Z stdout P def\n"
        "2026-01-02T03:04:05.000000004Z stdout F ghi\n"
        "garbage line\n"
        "2026-01-02T03:04:05.000000005Z stdout F la",
        lines);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].stream, "stderr");
    EXPECT_EQ(lines[0].content, "oops");
    EXPECT_EQ(lines[1].stream, "stdout");
    EXPECT_EQ(lines[1].content, "abcdefghi");
    EXPECT_EQ(lines[1].timestamp, "2026-01-02T03:04:05.000000001Z");  // the first record's time
    EXPECT_EQ(parser.malformed(), 1u);
    // The unfinished record is completed by the next read.
    parser.feed("st\n", lines);
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[2].content, "last");
}

// ---- config files ----

TEST(ConfigFile, YamlScalarsBecomeTheirJsonTypes) {
    auto j = yaml_to_json(
        "name: x\n"
        "count: 42\n"
        "neg: -7\n"
        "ratio: 0.5\n"
        "on: yes\n"
        "off: false\n"
        "nothing: ~\n"
        "quoted: \"42\"\n"
        "single: 'true'\n"
        "list:\n  - a\n  - 1\n"
        "map: {k: v}\n");
    ASSERT_TRUE(j) << j.error().message();
    EXPECT_EQ((*j)["name"], "x");
    EXPECT_EQ((*j)["count"], 42);
    EXPECT_EQ((*j)["neg"], -7);
    EXPECT_DOUBLE_EQ((*j)["ratio"].get<double>(), 0.5);
    EXPECT_EQ((*j)["on"], true);
    EXPECT_EQ((*j)["off"], false);
    EXPECT_TRUE((*j)["nothing"].is_null());
    EXPECT_EQ((*j)["quoted"], "42");
    EXPECT_EQ((*j)["single"], "true");
    EXPECT_EQ((*j)["list"], nlohmann::json({"a", 1}));
    EXPECT_EQ((*j)["map"], nlohmann::json({{"k", "v"}}));
}

TEST(ConfigFile, YamlSyntaxErrorsCarryTheLine) {
    auto j = yaml_to_json("a: 1\nb: [unclosed\n");
    ASSERT_FALSE(j);
    EXPECT_NE(j.error().message().find("YAML line"), std::string::npos) << j.error().message();
}

TEST(ConfigFile, PodConfigFromYamlAndJsonAgree) {
    const char* yaml =
        "metadata:\n"
        "  name: web\n"
        "  namespace: default\n"
        "  uid: u-1\n"
        "  attempt: 2\n"
        "hostname: web-0\n"
        "log_directory: /tmp/logs\n"
        "labels:\n"
        "  app: web\n"
        "linux:\n"
        "  security_context:\n"
        "    namespace_options:\n"
        "      network: 2\n";
    v1::PodSandboxConfig from_yaml;
    ASSERT_TRUE(parse_message(yaml, "pod.yaml", from_yaml));
    EXPECT_EQ(from_yaml.metadata().name(), "web");
    EXPECT_EQ(from_yaml.metadata().attempt(), 2u);
    EXPECT_EQ(from_yaml.log_directory(), "/tmp/logs");
    EXPECT_EQ(from_yaml.labels().at("app"), "web");
    EXPECT_EQ(from_yaml.linux().security_context().namespace_options().network(), v1::NODE);

    v1::PodSandboxConfig from_json;
    auto r = parse_message(
        R"({"metadata": {"name": "web", "namespace": "default", "uid": "u-1", "attempt": 2}, "hostname": "web-0",
            "logDirectory": "/tmp/logs", "labels": {"app": "web"},
            "linux": {"securityContext": {"namespaceOptions": {"network": "NODE"}}}})",
        "pod.json", from_json);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(from_json.SerializeAsString(), from_yaml.SerializeAsString());
}

TEST(ConfigFile, UnknownFieldsAndWrongShapesAreErrorsNamingTheFile) {
    v1::ContainerConfig c;
    auto unknown = parse_message("metadata: {name: x}\nimagee: {image: busybox}\n", "ctr.yaml", c);
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message().find("ctr.yaml: not a valid runtime.v1.ContainerConfig"), std::string::npos)
        << unknown.error().message();
    auto scalar = parse_message("just a string\n", "ctr.yaml", c);
    ASSERT_FALSE(scalar);
    EXPECT_NE(scalar.error().message().find("not a mapping"), std::string::npos) << scalar.error().message();
    EXPECT_FALSE(load_message("/nonexistent/ctl-test/ctr.yaml", c));
}

// ---- printing ----

TEST(Output, YamlRoundTripsThroughTheYamlReader) {
    nlohmann::json doc = {{"id", "abc"},
                          {"count", 3},
                          {"ready", true},
                          {"tricky", {"yes", "123", "", "a: b", "#x", "null"}},
                          {"empty", nlohmann::json::object()},
                          {"nested", {{"k", {1, 2}}}}};
    std::string text = json_to_yaml(doc);
    auto back = yaml_to_json(text);
    ASSERT_TRUE(back) << back.error().message() << "\n" << text;
    EXPECT_EQ(*back, doc) << text;
}

TEST(Output, TableAlignsColumnsByCodePoints) {
    Table t({"ID", "NAME", "STATE"});
    t.add_row({"abc", "π-pod", "Ready"});
    t.add_row({"abcdef", "x"});
    EXPECT_EQ(t.render(),
              "ID       NAME    STATE\n"
              "abc      π-pod   Ready\n"
              "abcdef   x\n");
}

TEST(Output, ShortIdsSizesAndAges) {
    EXPECT_EQ(short_id("sha256:0123456789abcdef0123", false), "0123456789abc");
    EXPECT_EQ(short_id("sha256:0123456789abcdef0123", true), "0123456789abcdef0123");
    EXPECT_EQ(short_id("short", false), "short");
    EXPECT_EQ(decimal_size(512), "512B");
    EXPECT_EQ(decimal_size(1'440'000), "1.44MB");
    EXPECT_EQ(decimal_size(4'200'000'000), "4.2GB");
    EXPECT_EQ(decimal_size(130'000'000), "130MB");
    const int64_t s = 1'000'000'000, now = 1'000'000 * s;
    EXPECT_EQ(human_age(now - 5 * s, now), "5 seconds ago");
    EXPECT_EQ(human_age(now - 70 * s, now), "About a minute ago");
    EXPECT_EQ(human_age(now - 3 * 3600 * s, now), "3 hours ago");
    EXPECT_EQ(human_age(now - 3 * 86400 * s, now), "3 days ago");
    EXPECT_EQ(human_age(0, now), "");
    EXPECT_FALSE(parse_output_format("xml"));
    EXPECT_EQ(parse_output_format("yaml").value(), OutputFormat::yaml);
}

// ---- command flags ----

TEST(Args, FlagsPositionalsAndDashDash) {
    auto p = ParsedArgs::parse("ps", {"-a", "--label", "a=1", "x", "--label=b=2", "--", "-q"},
                               {{"-a|--all", false}, {"--label", true}, {"-q|--quiet", false}});
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_TRUE(p->has("--all"));
    EXPECT_FALSE(p->has("--quiet"));  // after "--"
    EXPECT_EQ(p->positional, std::vector<std::string>{"x"});
    EXPECT_EQ(p->after_dashdash, std::vector<std::string>{"-q"});
    auto labels = p->labels("--label");
    ASSERT_TRUE(labels);
    EXPECT_EQ(*labels, (std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}}));
}

TEST(Args, AfterMaxPositionalsEverythingIsPositional) {
    auto p = ParsedArgs::parse("exec", {"--timeout", "5", "ctr", "ls", "-l"}, {{"--timeout", true}}, 1);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->positional, (std::vector<std::string>{"ctr", "ls", "-l"}));
    EXPECT_EQ(p->number("--timeout").value(), 5);
}

TEST(Args, ErrorsNameTheFlag) {
    auto unknown = ParsedArgs::parse("ps", {"--bogus"}, {{"-a|--all", false}});
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().message(), "ps: unknown flag --bogus");
    auto missing = ParsedArgs::parse("stop", {"-t"}, {{"-t|--timeout", true}});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message(), "stop: flag -t needs a value");
    auto p = ParsedArgs::parse("stop", {"-t", "-3", "--label", "nokey"}, {{"-t|--timeout", true}, {"--label", true}});
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->number("--timeout"));
    EXPECT_FALSE(p->labels("--label"));
}

}  // namespace
}  // namespace berth::ctl
