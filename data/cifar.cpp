// data/cifar.cpp: reading the CIFAR-10 and CIFAR-100 binary files (format: cifar.h).
// Shapes: a record's 3072 pixel bytes -> a sample (3, 32, 32) float32 = byte / 255, as
// torchvision's CIFAR10/CIFAR100 with ToTensor().
//
// The records stay in memory exactly as they are on disk (label bytes interleaved with pixels):
// 150 MB for the training set, converted to floats one sample at a time. Each file's size is
// checked to be a whole number of records before it is read, and every label is checked after.
#include "data/cifar.h"

#include "data/file_bytes.h"
#include "engine/error.h"

namespace retort {

namespace {

constexpr std::int64_t kPixelBytes = 3 * 32 * 32;
// No CIFAR file comes near this; it only stops a wrong path from filling the memory.
constexpr std::uint64_t kMaxFileBytes = std::uint64_t{1} << 30;

struct CifarFormat {
    const char* name;           // "CIFAR-10"
    std::int64_t label_bytes;   // label bytes before the pixels of each record
    std::int64_t num_classes;   // of the label retort uses (the last label byte)
    std::int64_t coarse_classes;  // of the first label byte of CIFAR-100; 0 when there is none

    std::int64_t record_bytes() const { return label_bytes + kPixelBytes; }
};

const CifarFormat& format_of(CifarKind kind) {
    static const CifarFormat cifar10{"CIFAR-10", 1, 10, 0};
    static const CifarFormat cifar100{"CIFAR-100", 2, 100, 20};
    return kind == CifarKind::cifar10 ? cifar10 : cifar100;
}

// A size that is not a whole, positive number of records: a truncated file, or another format.
void check_record_count(const CifarFormat& format, std::uint64_t size, const std::string& label) {
    const std::uint64_t record = static_cast<std::uint64_t>(format.record_bytes());
    if (size == 0 || size % record != 0)
        fail(label, ": the file is ", size, " bytes, not a positive multiple of the ", record,
             "-byte record (", format.label_bytes, " label byte", format.label_bytes > 1 ? "s" : "",
             " + ", kPixelBytes, " pixel bytes); it may be truncated or not a ", format.name,
             " binary file");
    if (size > kMaxFileBytes)
        fail(label, ": the file is ", size, " bytes, above the limit of ", kMaxFileBytes, " bytes");
}

void check_record_labels(const CifarFormat& format, const unsigned char* records,
                         std::int64_t count, const std::string& label) {
    for (std::int64_t r = 0; r < count; ++r) {
        const unsigned char* record = records + r * format.record_bytes();
        if (format.coarse_classes > 0 && record[0] >= format.coarse_classes)
            fail(label, ": record ", r, " has coarse label ", int{record[0]}, ", outside [0, ",
                 format.coarse_classes, ")");
        const int fine = record[format.label_bytes - 1];
        if (fine >= format.num_classes)
            fail(label, ": record ", r, " has label ", fine, ", outside [0, ", format.num_classes,
                 ")");
    }
}

class CifarDataset : public Dataset {
public:
    CifarDataset(const CifarFormat& format, std::vector<unsigned char> records,
                 std::string description)
        : format_(format), records_(std::move(records)), description_(std::move(description)) {}

    std::int64_t size() const override {
        return static_cast<std::int64_t>(records_.size()) / format_.record_bytes();
    }
    Sample get(std::int64_t index) const override {
        check_sample_index(index, size(), description_);
        const unsigned char* record = records_.data() + index * format_.record_bytes();
        return {image_from_planar_bytes(record + format_.label_bytes, {3, 32, 32}),
                record[format_.label_bytes - 1]};
    }
    std::int64_t num_classes() const override { return format_.num_classes; }
    Shape image_shape() const override { return {3, 32, 32}; }
    std::string describe() const override { return description_; }

private:
    const CifarFormat& format_;
    std::vector<unsigned char> records_;  // whole records, as on disk
    std::string description_;
};

}  // namespace

std::shared_ptr<const Dataset> load_cifar_dataset(CifarKind kind,
                                                  const std::vector<std::filesystem::path>& files,
                                                  const std::string& split) {
    const CifarFormat& format = format_of(kind);
    const std::string kind_name = std::string(format.name) + " file";
    internal_check(!files.empty(), "load_cifar_dataset needs at least one file");

    // Sizes first, so a bad file is reported before hundreds of megabytes are read.
    std::uint64_t total = 0;
    for (const std::filesystem::path& file : files) {
        const std::uint64_t size = regular_file_size(file, kind_name);
        check_record_count(format, size, kind_name + " " + quote_path(file));
        total += size;
    }

    std::vector<unsigned char> records;
    records.reserve(static_cast<std::size_t>(total));
    for (const std::filesystem::path& file : files) {
        const std::size_t start = records.size();
        append_file_bytes(file, kind_name, kMaxFileBytes, records);
        if ((records.size() - start) % static_cast<std::size_t>(format.record_bytes()) != 0)
            fail(kind_name, " ", quote_path(file), ": the file changed size while it was read");
        const std::int64_t count =
            static_cast<std::int64_t>(records.size() - start) / format.record_bytes();
        check_record_labels(format, records.data() + start, count,
                            kind_name + " " + quote_path(file));
    }
    const std::int64_t count = static_cast<std::int64_t>(records.size()) / format.record_bytes();
    std::string description =
        cat(format.name, " ", split, ": ", count, " images (3, 32, 32) from ",
            files.size() == 1 ? "" : cat(files.size(), " files in "),
            quote_path(files.size() == 1 ? files[0] : files[0].parent_path()));
    return std::make_shared<CifarDataset>(format, std::move(records), std::move(description));
}

std::shared_ptr<const Dataset> cifar_dataset_from_bytes(CifarKind kind,
                                                        std::vector<unsigned char> records,
                                                        const std::string& source,
                                                        const std::string& split) {
    const CifarFormat& format = format_of(kind);
    const std::string label = std::string(format.name) + " data " + quote_path(source);
    check_record_count(format, records.size(), label);
    const std::int64_t count = static_cast<std::int64_t>(records.size()) / format.record_bytes();
    check_record_labels(format, records.data(), count, label);
    std::string description = cat(format.name, " ", split, ": ", count,
                                  " images (3, 32, 32) from ", quote_path(source));
    return std::make_shared<CifarDataset>(format, std::move(records), std::move(description));
}

}  // namespace retort
