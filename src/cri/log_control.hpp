// berthd's log settings at runtime: SIGUSR1 toggles debug messages, SIGHUP re-reads log_level and log_format from
// berth.toml (docs/berthd.md "Logs"). Every other key needs a restart; a reload says which ones changed.
#pragma once

#include <string>

#include "common/log.hpp"
#include "cri/config.hpp"

namespace berth::cri {

// The file berthd was configured from, as it read it at start (before flags).
struct ConfigFile {
    std::string path;          // empty: no file (nothing to reload)
    bool must_exist = false;   // as load_config: named by --config
    std::string loaded_json;   // config_json() of what the file said at start
};

// "debug", "info", "warn", "error" -> the level (validate_config has checked the name).
log::Level parse_log_level(const std::string& name);
const char* log_level_name(log::Level level);
log::Format parse_log_format(const std::string& name);

// Called from berthd's signal thread only.
class LogControl {
public:
    // `level` is the level berthd runs with now (the file's, or a flag's).
    LogControl(ConfigFile file, log::Level level) : file_(std::move(file)), base_(level) {}

    // Debug messages on, or back to the level in force before they were turned on (info when that was debug).
    void toggle_debug();
    // Re-reads the file: applies its log_level and log_format and logs each change; logs every other top-level key
    // that differs from what berthd started with (in effect only after a restart). A file that fails to load
    // changes nothing and is logged as an error.
    void reload();

private:
    const ConfigFile file_;
    log::Level base_;  // the configured level, what toggle_debug returns to
};

}  // namespace berth::cri
