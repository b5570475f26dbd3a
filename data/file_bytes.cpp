// data/file_bytes.cpp: opening and reading dataset files (see file_bytes.h).
//
// POSIX open/fstat/read rather than iostreams: fstat tells a regular file from a directory or a
// FIFO before anything is read, and errno gives the reason an open failed.
#include "data/file_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/error.h"

namespace retort {

std::string quote_path(const std::filesystem::path& path) {
    std::string out = "'";
    out += path.string();
    out += '\'';
    return out;
}

InputFile::InputFile(const std::filesystem::path& path, std::string kind)
    : label_(kind + " " + quote_path(path)) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail(label_, ": cannot open: ", std::strerror(errno));
    struct stat info {};
    if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
        ::close(fd_);  // the destructor does not run when the constructor throws
        fail(label_, ": not a regular file");
    }
    size_ = static_cast<std::uint64_t>(info.st_size);
}

InputFile::~InputFile() {
    if (fd_ >= 0) ::close(fd_);
}

std::size_t InputFile::read_some(void* dest, std::size_t n) {
    std::size_t done = 0;
    char* out = static_cast<char*>(dest);
    while (done < n) {
        const ssize_t got = ::read(fd_, out + done, n - done);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) fail(label_, ": read error: ", std::strerror(errno));
        if (got == 0) break;  // end of file
        done += static_cast<std::size_t>(got);
    }
    return done;
}

void append_file_bytes(const std::filesystem::path& path, const std::string& kind,
                       std::uint64_t max_bytes, std::vector<unsigned char>& out) {
    InputFile file(path, kind);
    if (file.size() > max_bytes)
        fail(file.label(), ": the file is ", file.size(), " bytes, above the limit of ", max_bytes,
             " bytes");
    const std::size_t start = out.size();
    out.resize(start + static_cast<std::size_t>(file.size()));
    const std::size_t got =
        file.read_some(out.data() + start, static_cast<std::size_t>(file.size()));
    if (got != file.size())
        fail(file.label(), ": the file shrank while it was read (", got, " of ", file.size(),
             " bytes)");
}

std::uint64_t regular_file_size(const std::filesystem::path& path, const std::string& kind) {
    return InputFile(path, kind).size();
}

}  // namespace retort
