// engine/io/atomic_file.h: writing a whole file so that a crash, a kill or a power cut leaves
// either the old file or the new one under its name, never a part of one.
//
// The recipe (what PyTorch's torch.save does not do, and what databases do):
//   1. write the bytes to a temporary file "<path>.tmp.<pid>" in the same directory (a rename is
//      atomic only within one file system);
//   2. fsync it: the data must be on disk before step 3 makes it visible under the real name, or
//      a power cut could leave the new name pointing at an empty file;
//   3. rename it over `path` (atomic on POSIX: a reader sees the old file or the new one);
//   4. fsync the directory, so that the rename itself survives a power cut.
// A process killed between the steps leaves at most a stray temporary file beside the old one.
//
// Every file a run writes whole (checkpoints through safetensors, config, summaries, a metrics.csv
// rewritten on resume, plots) goes through here; metrics.csv rows are appended instead (see
// distill/metrics_csv.h for how a row torn by a kill is handled).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace retort {

// Writes a file in pieces (for a file too large to build in memory first), under a temporary name
// until commit(). If the writer is destroyed before commit() succeeded (an exception on the way),
// the temporary file is removed and `path` is untouched. Failures throw retort::Error naming the
// file, what failed and the system's reason.
class AtomicFileWriter {
public:
    explicit AtomicFileWriter(std::string path);
    ~AtomicFileWriter();
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void write(const void* data, std::size_t count);
    void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
    // Steps 2 to 4 above; after it returns, `path` holds exactly what was written.
    void commit();

    const std::string& temp_path() const { return temp_path_; }

private:
    [[noreturn]] void fail_io(const char* action, const std::string& file) const;

    std::string path_, temp_path_;
    int fd_ = -1;
    bool committed_ = false;
};

// The whole file at once: `bytes` become the contents of `path`, atomically and durably.
void write_file_atomically(const std::string& path, std::string_view bytes);

// Removes what writers killed part way left in `dir`: files named "<name>.tmp.<pid>" whose
// process is gone (a running writer's file stays). Returns how many went. A resumed run calls it,
// so a kill leaves no half-written file behind for long.
int remove_stale_temporary_files(const std::string& dir);

// fsync of the directory that holds `path`, so that a file created or renamed there survives a
// power cut. Best effort: some file systems cannot sync a directory, and nothing is lost by
// trying.
void sync_parent_directory(const std::string& path);

}  // namespace retort
