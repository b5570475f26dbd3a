// engine/io/atomic_file.cpp: temporary file, fsync, rename, directory fsync (the recipe and why
// each step is there are in atomic_file.h). Plain POSIX calls: iostreams cannot fsync.
#include "engine/io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "engine/error.h"

namespace retort {

AtomicFileWriter::AtomicFileWriter(std::string path)
    : path_(std::move(path)), temp_path_(path_ + ".tmp." + std::to_string(::getpid())) {
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail_io("create the temporary file", temp_path_);
}

AtomicFileWriter::~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, std::size_t count) {
    const char* in = static_cast<const char*>(data);
    while (count > 0) {
        const ssize_t put = ::write(fd_, in, count);
        if (put < 0 && errno == EINTR) continue;  // a signal (Ctrl-C asks for a stop) is no error
        if (put < 0) fail_io("write", temp_path_);
        in += put;
        count -= static_cast<std::size_t>(put);
    }
}

void AtomicFileWriter::commit() {
    if (::fsync(fd_) != 0) fail_io("flush to disk", temp_path_);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail_io("close", temp_path_);
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
        fail_io(("rename " + temp_path_ + " to").c_str(), path_);
    committed_ = true;
    sync_parent_directory(path_);
}

void AtomicFileWriter::fail_io(const char* action, const std::string& file) const {
    const int err = errno;  // first, before anything else can change it
    fail("cannot write ", path_, ": cannot ", action, " ", file, ": ", std::strerror(err));
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
    AtomicFileWriter file(path);
    file.write(bytes);
    file.commit();
}

int remove_stale_temporary_files(const std::string& dir) {
    namespace fs = std::filesystem;
    int removed = 0;
    std::error_code ec;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        const std::size_t mark = name.rfind(".tmp.");
        if (mark == std::string::npos || !entry.is_regular_file(ec)) continue;
        const std::string digits = name.substr(mark + 5);
        if (digits.empty() || digits.size() > 9 ||
            digits.find_first_not_of("0123456789") != std::string::npos)
            continue;
        // kill(pid, 0) sends nothing; ESRCH says no such process, so nobody is writing the file.
        const pid_t pid = static_cast<pid_t>(std::stol(digits));
        if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH && fs::remove(entry.path(), ec)) ++removed;
    }
    return removed;
}

void sync_parent_directory(const std::string& path) {
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    const std::filesystem::path dir = parent.empty() ? std::filesystem::path(".") : parent;
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

}  // namespace retort
