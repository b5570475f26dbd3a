// data/file_bytes.h: reading the bytes of dataset files, with limits and messages that name them.
//
// Every reader in data/ opens untrusted files. These helpers refuse anything that is not a regular
// file, refuse files above a size limit before allocating, and start every error message with the
// kind of file and its quoted path, e.g. "CIFAR-10 file '/data/test_batch.bin': ...".
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace retort {

// "'/path/to/file'": how a path appears in every data error message.
std::string quote_path(const std::filesystem::path& path);

// A regular file opened for reading, closed on every path out.
class InputFile {
public:
    // `kind` names the file in messages ("IDX file", "image"); throws Error if it cannot be opened
    // or is not a regular file.
    InputFile(const std::filesystem::path& path, std::string kind);
    ~InputFile();
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    std::uint64_t size() const { return size_; }
    // Reads up to n bytes; fewer only at the end of the file. Throws Error on a read error.
    std::size_t read_some(void* dest, std::size_t n);
    // "<kind> '<path>'", the start of every message about this file.
    const std::string& label() const { return label_; }

private:
    int fd_ = -1;
    std::uint64_t size_ = 0;
    std::string label_;
};

// Appends the whole file to `out`, refusing files larger than max_bytes before reading.
void append_file_bytes(const std::filesystem::path& path, const std::string& kind,
                       std::uint64_t max_bytes, std::vector<unsigned char>& out);

// The size of a regular file, or an Error naming it (missing, not a regular file).
std::uint64_t regular_file_size(const std::filesystem::path& path, const std::string& kind);

}  // namespace retort
