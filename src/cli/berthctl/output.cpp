#include "output.hpp"

#include <google/protobuf/util/json_util.h>

namespace berth::ctl {

Result<OutputFormat> parse_output_format(std::string_view s) {
    if (s == "table") return OutputFormat::table;
    if (s == "json") return OutputFormat::json;
    return fail("-o {:?}: unsupported output format (json, table)", s);
}

Result<nlohmann::json> message_to_json(const google::protobuf::Message& m) {
    google::protobuf::util::JsonPrintOptions opts;
    opts.always_print_primitive_fields = true;
    std::string text;
    if (auto st = google::protobuf::util::MessageToJsonString(m, &text, opts); !st.ok())
        return fail("encode {} as JSON: {}", m.GetTypeName(), st.ToString());
    return nlohmann::json::parse(text);
}

}  // namespace berth::ctl
