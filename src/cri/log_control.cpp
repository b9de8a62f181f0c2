#include "cri/log_control.hpp"

#include <nlohmann/json.hpp>

namespace berth::cri {

log::Level parse_log_level(const std::string& name) {
    if (name == "debug") return log::Level::debug;
    if (name == "warn") return log::Level::warn;
    if (name == "error") return log::Level::error;
    return log::Level::info;
}

const char* log_level_name(log::Level level) {
    switch (level) {
        case log::Level::debug: return "debug";
        case log::Level::info: return "info";
        case log::Level::warn: return "warn";
        case log::Level::error: return "error";
    }
    return "info";
}

log::Format parse_log_format(const std::string& name) {
    return name == "json" ? log::Format::json : log::Format::text;
}

void LogControl::toggle_debug() {
    if (log::min_level() == log::Level::debug) {
        log::Level back = base_ == log::Level::debug ? log::Level::info : base_;
        // Said before the level goes up, so it is seen at any level below warn.
        log::info("SIGUSR1: debug logging off (log level {})", log_level_name(back));
        log::set_min_level(back);
    } else {
        base_ = log::min_level();
        log::set_min_level(log::Level::debug);
        log::info("SIGUSR1: debug logging on (was {}; SIGUSR1 again turns it off)", log_level_name(base_));
    }
}

void LogControl::reload() {
    if (file_.path.empty()) {
        log::warn("SIGHUP: berthd was started without a configuration file: nothing to reload");
        return;
    }
    auto loaded = load_config(file_.path, file_.must_exist);
    if (!loaded) {
        log::error("SIGHUP: {}; the running configuration is kept", loaded.error().message());
        return;
    }
    const log::Level level = parse_log_level(loaded->log_level);
    const log::Format format = parse_log_format(loaded->log_format);
    const log::Level old_level = log::min_level();
    const log::Format old_format = log::format();

    // The keys that only a restart applies, compared as berth.toml names them.
    nlohmann::json now = nlohmann::json::parse(config_json(*loaded), nullptr, false);
    nlohmann::json then = nlohmann::json::parse(file_.loaded_json, nullptr, false);
    std::string restart;
    if (now.is_object() && then.is_object())
        for (const auto& [key, value] : now.items()) {
            if (key == "log_level" || key == "log_format") continue;
            if (!then.contains(key) || then[key] != value) restart += (restart.empty() ? "" : ", ") + key;
        }

    // Changes are announced in the settings in force before them, then applied.
    if (level == old_level && format == old_format)
        log::info("SIGHUP: reloaded {}: log_level {} and log_format {} unchanged", file_.path, log_level_name(level),
                  format == log::Format::json ? "json" : "text");
    if (level != old_level)
        log::info("SIGHUP: reloaded {}: log_level {} -> {}", file_.path, log_level_name(old_level),
                  log_level_name(level));
    if (format != old_format)
        log::info("SIGHUP: reloaded {}: log_format {} -> {}", file_.path,
                  old_format == log::Format::json ? "json" : "text", format == log::Format::json ? "json" : "text");
    if (!restart.empty())
        log::warn("SIGHUP: {} changed in {}: only log_level and log_format are reloaded; restart berthd to apply it",
                  restart, file_.path);
    base_ = level;
    log::set_min_level(level);
    log::set_format(format);
}

}  // namespace berth::cri
