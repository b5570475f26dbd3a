// tests/cli_run.h: what the end-to-end tests of the `retort` binary share: running it with
// arguments and capturing its output and exit status, and a scratch directory removed afterwards.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace retort::testing {

struct CliRun {
    int status;          // the exit code (-1 if the process did not exit normally)
    std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing its stdout and stderr together and its exit code.
inline CliRun run_command(const std::string& command_line) {
    namespace fs = std::filesystem;
    static int counter = 0;
    const fs::path log = fs::temp_directory_path() / ("retort_cli_" + std::to_string(::getpid()) +
                                                      "_" + std::to_string(counter++) + ".log");
    const int raw = std::system((command_line + " > " + log.string() + " 2>&1").c_str());
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    fs::remove(log);
    return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, text.str()};
}

// Runs `retort ARGS` (ARGS as a shell would split them) from the build directory.
inline CliRun run_retort(const std::string& args) {
    return run_command(std::string(RETORT_BINARY_DIR) + "/retort " + args);
}

// Every run must have failed (non-zero exit) with a message containing its expected text, and
// left no file at `output`: bad input never produces a half-made result.
inline void check_refused(const std::vector<std::pair<CliRun, std::string>>& cases,
                          const std::string& output) {
    for (const auto& [run, expected] : cases) {
        CAPTURE(run.output);
        CHECK(run.status != 0);
        CHECK(run.output.find(expected) != std::string::npos);
        CHECK_FALSE(std::filesystem::exists(output));
    }
}

// A fresh, empty directory for one test, removed with everything in it at the end.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        static int counter = 0;
        path = std::filesystem::temp_directory_path() /
               ("retort_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

}  // namespace retort::testing
