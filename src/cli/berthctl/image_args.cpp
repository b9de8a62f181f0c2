#include "image_args.hpp"

#include <cstdlib>
#include <vector>

namespace berth::ctl {

std::string ImageArgs::value(std::string_view flag, std::string fallback) const {
    auto it = values.find(flag);
    if (it == values.end() || it->second.empty()) return fallback;
    return it->second.back();
}

const std::vector<std::string>& ImageArgs::all(std::string_view flag) const {
    static const std::vector<std::string> none;
    auto it = values.find(flag);
    return it == values.end() ? none : it->second;
}

Result<ImageArgs> parse_image_args(std::string_view sub, const std::vector<std::string>& args,
                                   const GlobalOptions& global, std::initializer_list<FlagSpec> flags) {
    std::vector<FlagSpec> specs = {{"--root", "", true, false}, {"--output", "-o", true, false}};
    specs.insert(specs.end(), flags.begin(), flags.end());

    ImageArgs out;
    const char* env_root = std::getenv("BERTH_ROOT");
    out.root = env_root && *env_root ? env_root : kDefaultImageRoot;
    out.output = global.output;
    bool flags_done = false;
    for (size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (flags_done || !arg.starts_with("-") || arg == "-") {
            out.positional.emplace_back(arg);
            continue;
        }
        if (arg == "--") {
            flags_done = true;
            continue;
        }
        std::string_view name = arg, inline_value;
        bool has_inline = false;
        if (arg.starts_with("--") && arg.find('=') != std::string_view::npos) {
            name = arg.substr(0, arg.find('='));
            inline_value = arg.substr(arg.find('=') + 1);
            has_inline = true;
        }
        const FlagSpec* spec = nullptr;
        for (const auto& s : specs)
            if (s.name == name || (!s.alias.empty() && s.alias == name)) spec = &s;
        if (!spec) return fail("image {}: unknown flag {}", sub, name);
        std::string value;
        if (spec->takes_value) {
            if (has_inline) {
                value = std::string(inline_value);
            } else {
                if (i + 1 >= args.size()) return fail("image {}: {} needs a value", sub, name);
                value = args[++i];
            }
        } else if (has_inline) {
            return fail("image {}: {} takes no value", sub, name);
        }
        auto& slot = out.values[std::string(spec->name)];
        if (!slot.empty() && !spec->repeatable && spec->name != "--output" && spec->name != "--root")
            return fail("image {}: {} given twice", sub, spec->name);
        slot.push_back(std::move(value));
    }
    if (out.has("--output")) {
        BERTH_ASSIGN(out.output, parse_output_format(out.value("--output")));
    }
    if (out.has("--root")) {
        out.root = out.value("--root");
        if (out.root.empty()) return fail("image {}: --root needs a directory", sub);
    }
    return out;
}

}  // namespace berth::ctl
