// data/load_dataset.cpp: load_dataset(): which format a directory holds, and the three splits.
//
// Formats, and what `format = auto` looks for in the directory DIR:
//   idx        the four MNIST files: train-images-idx3-ubyte, train-labels-idx1-ubyte,
//              t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each also accepted with ".gz" and
//              with a dot before "idx" (train-images.idx3-ubyte); a plain file wins over a .gz
//   cifar10    data_batch_1.bin .. data_batch_5.bin and test_batch.bin, in DIR or in
//              DIR/cifar-10-batches-bin (where the official archive unpacks them)
//   cifar100   train.bin and test.bin, in DIR or in DIR/cifar-100-binary
//   folder     DIR/train/<class>/ image folders (layout: data/image_folder.h)
//   synthetic  no files: the path is "synthetic" or "synthetic:key=value,..." (data/synthetic.h);
//              with format = synthetic an empty path means the default spec
// A directory that holds only part of a format's files is an error naming the missing ones, and
// one that matches two formats is an error asking for `format`, rather than a silent guess.
//
// Validation split: val_size samples of the training files are held out (a seeded Philox
// permutation picks them) and train keeps the rest. val_size -1 means min(5000, N / 10) for N
// training samples: 5,000 for MNIST, Fashion-MNIST and CIFAR, as is customary. val_size 0 trains on
// every training sample and leaves val empty. An image folder with a val/ folder uses it as the
// validation split instead; val_size must then be left at -1 or 0.
#include <algorithm>
#include <filesystem>

#include "data/cifar.h"
#include "data/dataset.h"
#include "data/file_bytes.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/synthetic.h"
#include "engine/error.h"
#include "engine/random.h"

namespace retort {

namespace {

namespace fs = std::filesystem;

bool path_exists(const fs::path& path) {
    std::error_code ec;
    return fs::exists(path, ec);
}

bool is_dir(const fs::path& path) {
    std::error_code ec;
    return fs::is_directory(path, ec);
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

// ---------------------------------------------------------------------------------------------
// What each format needs, found or missing

// A format's files in one directory: those found, and the names of those missing.
struct FileSet {
    std::string format;
    fs::path dir;
    std::vector<fs::path> found;
    std::vector<std::string> missing;
    bool complete() const { return missing.empty(); }
    bool partial() const { return !found.empty() && !missing.empty(); }
};

const char* const kIdxStems[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

// The first of the accepted spellings of an IDX file that exists in dir.
fs::path find_idx_file(const fs::path& dir, const std::string& stem) {
    std::string dotted = stem;
    dotted[dotted.find("-idx")] = '.';  // train-images.idx3-ubyte
    for (const std::string& name : {stem, stem + ".gz", dotted, dotted + ".gz"})
        if (path_exists(dir / name)) return dir / name;
    return {};
}

FileSet idx_files(const fs::path& dir) {
    FileSet set{"idx", dir, {}, {}};
    for (const char* stem : kIdxStems) {
        fs::path file = find_idx_file(dir, stem);
        if (file.empty()) set.missing.push_back(std::string(stem) + "[.gz]");
        else set.found.push_back(file);
    }
    return set;
}

FileSet named_files(const std::string& format, const fs::path& dir,
                    const std::vector<std::string>& names) {
    FileSet set{format, dir, {}, {}};
    for (const std::string& name : names) {
        if (path_exists(dir / name)) set.found.push_back(dir / name);
        else set.missing.push_back(name);
    }
    return set;
}

const std::vector<std::string> kCifar10Names = {"data_batch_1.bin", "data_batch_2.bin",
                                                "data_batch_3.bin", "data_batch_4.bin",
                                                "data_batch_5.bin", "test_batch.bin"};
const std::vector<std::string> kCifar100Names = {"train.bin", "test.bin"};

// CIFAR files in dir, or else in the folder the official archive unpacks to.
FileSet cifar_files(const std::string& format, const fs::path& dir) {
    const std::vector<std::string>& names = format == "cifar10" ? kCifar10Names : kCifar100Names;
    const char* archive_dir = format == "cifar10" ? "cifar-10-batches-bin" : "cifar-100-binary";
    FileSet here = named_files(format, dir, names);
    if (!here.found.empty() || !is_dir(dir / archive_dir)) return here;
    return named_files(format, dir / archive_dir, names);
}

FileSet folder_files(const fs::path& dir) {
    FileSet set{"folder", dir, {}, {}};
    if (is_dir(dir / "train")) set.found.push_back(dir / "train");
    else set.missing.push_back("train/");
    return set;
}

FileSet files_of(const std::string& format, const fs::path& dir) {
    if (format == "idx") return idx_files(dir);
    if (format == "cifar10" || format == "cifar100") return cifar_files(format, dir);
    return folder_files(dir);
}

[[noreturn]] void fail_incomplete(const FileSet& set) {
    fail("dataset directory ", quote_path(set.dir), " holds ",
         set.found.empty() ? "none of the " : "only part of the ", set.format, " files: missing ",
         join(set.missing));
}

std::string detect_format(const fs::path& dir) {
    std::vector<FileSet> complete;
    for (const char* format : {"idx", "cifar10", "cifar100", "folder"}) {
        FileSet set = files_of(format, dir);
        if (set.partial()) fail_incomplete(set);
        if (set.complete()) complete.push_back(std::move(set));
    }
    if (complete.empty())
        fail("found no dataset in ", quote_path(dir), "; looked for: the four IDX files of MNIST ",
             "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, ",
             "t10k-labels-idx1-ubyte, each optionally .gz); CIFAR-10 binary batches ",
             "(data_batch_1.bin .. data_batch_5.bin, test_batch.bin, also under ",
             "cifar-10-batches-bin/); CIFAR-100 binaries (train.bin, test.bin, also under ",
             "cifar-100-binary/); an image folder (", kImageFolderLayout, ")");
    if (complete.size() > 1) {
        std::vector<std::string> names;
        for (const FileSet& set : complete) names.push_back(set.format);
        fail("dataset directory ", quote_path(dir), " holds more than one dataset (", join(names),
             "); choose one with the format option");
    }
    return complete.front().format;
}

// ---------------------------------------------------------------------------------------------
// Loading each format: the training files' samples and the test split

struct Loaded {
    std::shared_ptr<const Dataset> train_full, test, val;  // val only from an image folder's val/
};

Loaded load_files(const std::string& format, const fs::path& dir) {
    FileSet set = files_of(format, dir);
    if (!set.complete()) fail_incomplete(set);
    if (format == "idx")
        return {load_idx_dataset(set.found[0], set.found[1], "train"),
                load_idx_dataset(set.found[2], set.found[3], "test"), nullptr};
    const CifarKind kind = format == "cifar10" ? CifarKind::cifar10 : CifarKind::cifar100;
    const std::vector<fs::path> train_files(set.found.begin(), set.found.end() - 1);
    return {load_cifar_dataset(kind, train_files, "train"),
            load_cifar_dataset(kind, {set.found.back()}, "test"), nullptr};
}

// Another split of an image folder: the same class folders as train/, and train's channel count.
std::shared_ptr<const Dataset> load_folder_split(const fs::path& root, const std::string& split,
                                                 const ImageFolderDataset& train) {
    const fs::path dir = root / split;
    const std::vector<std::string> classes = ImageFolderDataset::class_folders(dir);
    if (classes != train.classes()) {
        std::vector<std::string> missing, extra;
        for (const std::string& c : train.classes())
            if (!std::binary_search(classes.begin(), classes.end(), c)) missing.push_back(c);
        for (const std::string& c : classes)
            if (!std::binary_search(train.classes().begin(), train.classes().end(), c))
                extra.push_back(c);
        fail("image folder ", quote_path(root), ": the class folders of ", split,
             "/ differ from those of train/",
             missing.empty() ? "" : "; missing in " + split + "/: ", join(missing),
             extra.empty() ? "" : "; not in train/: ", join(extra));
    }
    return std::make_shared<ImageFolderDataset>(dir, split, classes,
                                                static_cast<int>(train.image_shape()[0]));
}

Loaded load_folder(const fs::path& root) {
    if (!is_dir(root / "train"))
        fail("image folder ", quote_path(root), " has no train/ folder; expected ",
             kImageFolderLayout);
    if (!is_dir(root / "test"))
        fail("image folder ", quote_path(root), " has no test/ folder; expected ",
             kImageFolderLayout);
    auto train = std::make_shared<ImageFolderDataset>(
        root / "train", "train", ImageFolderDataset::class_folders(root / "train"));
    Loaded loaded{train, load_folder_split(root, "test", *train), nullptr};
    if (is_dir(root / "val")) loaded.val = load_folder_split(root, "val", *train);
    return loaded;
}

Loaded load_synthetic(const std::string& path, std::uint64_t seed) {
    require(path.empty() || is_synthetic_spec(path),
            "format 'synthetic' takes the path 'synthetic' ",
            "or 'synthetic:key=value,...' (or none), got ", quote_path(path));
    const SyntheticOptions options = parse_synthetic_spec(path.empty() ? "synthetic" : path);
    return {std::make_shared<SyntheticDataset>(options, seed, "train"),
            std::make_shared<SyntheticDataset>(options, seed, "test"), nullptr};
}

const char* const kFormats[] = {"auto", "idx", "cifar10", "cifar100", "folder", "synthetic"};

void check_format_name(const std::string& format) {
    for (const char* known : kFormats)
        if (format == known) return;
    fail("unknown dataset format '", format, "'; valid formats: auto, idx, cifar10, cifar100, ",
         "folder, synthetic");
}

Loaded load_any(const DataOptions& options) {
    check_format_name(options.format);
    if (options.format == "synthetic" ||
        (options.format == "auto" && is_synthetic_spec(options.path)))
        return load_synthetic(options.path, options.seed);
    require(!options.path.empty(), "no dataset path given (format '", options.format, "')");
    const fs::path dir = options.path;
    require(path_exists(dir), "dataset directory ", quote_path(dir), " does not exist");
    require(is_dir(dir), "dataset path ", quote_path(dir), " is not a directory");
    const std::string format = options.format == "auto" ? detect_format(dir) : options.format;
    return format == "folder" ? load_folder(dir) : load_files(format, dir);
}

}  // namespace

std::pair<std::shared_ptr<const Dataset>, std::shared_ptr<const Dataset>> split_off_validation(
    std::shared_ptr<const Dataset> full, std::int64_t val_size, std::uint64_t seed) {
    const std::int64_t n = full->size();
    require(val_size >= 0, "val_size must be at least 0, got ", val_size);
    require(val_size < n, "val_size ", val_size, " leaves no training samples: ", full->describe(),
            " holds ", n, "; use a val_size below ", n);
    if (val_size == 0)
        return {full, std::make_shared<Subset>(full, std::vector<std::int64_t>{}, "val")};
    // A key of its own, so the choice does not mirror other draws that use the seed directly
    // (such as an epoch's shuffle).
    Generator generator(seed ^ 0x76616C2D73706C74ull);
    const std::vector<std::int64_t> order = randperm(n, &generator).to_vector<std::int64_t>();
    std::vector<std::int64_t> val(order.begin(), order.begin() + val_size);
    std::vector<std::int64_t> train(order.begin() + val_size, order.end());
    std::sort(val.begin(), val.end());
    std::sort(train.begin(), train.end());
    return {std::make_shared<Subset>(full, std::move(train), "train"),
            std::make_shared<Subset>(full, std::move(val), "val")};
}

DatasetSplits load_dataset(const DataOptions& options) {
    require(options.val_size >= -1, "val_size must be -1 (the default), 0 or more, got ",
            options.val_size);
    Loaded loaded = load_any(options);
    if (loaded.val) {
        require(options.val_size <= 0, "image folder ", quote_path(options.path),
                " has a val/ folder, ", "which is the validation split; val_size (",
                options.val_size, ") applies only ", "without one: leave it at -1");
        return {loaded.train_full, loaded.val, loaded.test};
    }
    const std::int64_t n = loaded.train_full->size();
    const std::int64_t val_size =
        options.val_size >= 0 ? options.val_size : std::min<std::int64_t>(5000, n / 10);
    auto [train, val] = split_off_validation(loaded.train_full, val_size, options.seed);
    return {train, val, loaded.test};
}

}  // namespace retort
