// data/loader.cpp: the DataLoader: deterministic epoch order, batches built by worker threads,
// handed out strictly in order.
//
// Shapes: a batch holds images (B, C, H, W) float32, labels (B) int64, optional targets (B, K).
// Matches the contract of torch.utils.data.DataLoader (shuffle, drop_last, num_workers,
// prefetching), not its random streams: here every random number is named by (seed, epoch,
// sample or batch index), see data/sample_rng.h.
//
// How the threads cooperate. Batch b of an epoch is a pure function of (seed, epoch, b), so any
// worker may build any batch. Workers take the lowest batch nobody has taken yet, build it
// without holding the lock, and file it in `done`, a reorder buffer keyed by batch index. next()
// waits for exactly the batch it must return next. A worker may only take batch b when
// b < next_to_return + prefetch, which bounds the memory (at most `prefetch` batches built or
// being built) and can never deadlock: the batch next() waits for is always done, being built,
// or allowed to be taken.
// start_epoch() bumps `generation`; a worker still building a batch of the old epoch sees the
// change between samples, stops, and throws its work away. The destructor does the same and joins.
// Errors inside a worker are caught and stored with the batch; next() rethrows them.
#include "data/loader.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "data/batch_transforms.h"
#include "data/sample_rng.h"
#include "data/transforms.h"
#include "engine/cuda/upload.h"
#include "engine/dist/communicator.h"
#include "engine/error.h"
#include "engine/parallel.h"

namespace retort {

std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch,
                                      bool shuffle) {
    require(n >= 0 && epoch >= 0, "epoch_order: n and epoch must be non-negative");
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) order[i] = i;
    if (!shuffle) return order;
    // Fisher-Yates, every swap drawn from the epoch's own stream
    SampleRng rng(seed, SampleRng::Purpose::order, static_cast<std::uint64_t>(epoch), 0);
    for (std::int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.integer(0, i + 1)]);
    return order;
}

namespace {

// A finished batch, or the reason it could not be built.
struct Built {
    Batch batch;
    std::exception_ptr error;
};

// What building a batch needs besides the dataset.
struct BatchRecipe {
    const Dataset* dataset;
    const LoaderOptions* options;
    const TransformPipeline* transforms;
    const BatchTransform* batch_transform;  // null when there is none
};

// Reads sample `index` and applies the transforms. Any failure becomes an Error that says which
// sample of which batch it was.
Tensor load_sample(const BatchRecipe& r, std::int64_t index, std::int64_t epoch, std::int64_t b,
                   std::int64_t& label, std::int64_t* variant) {
    try {
        Sample s = r.dataset->get(index);
        require(s.image.defined() && s.image.dim() == 3 && s.image.dtype() == DType::f32,
                "expected a float32 image of shape (C, H, W), got ",
                s.image.defined() ? cat(dtype_name(s.image.dtype()), " ", shape_str(s.image.shape()))
                                  : std::string("an undefined tensor"));
        const std::int64_t classes = r.dataset->num_classes();
        require(classes <= 0 || (s.label >= 0 && s.label < classes), "label ", s.label,
                " is outside [0, ", classes, ")");
        label = s.label;
        SampleRng rng = SampleRng::for_sample(r.options->seed, static_cast<std::uint64_t>(epoch),
                                              static_cast<std::uint64_t>(index));
        if (variant) return r.transforms->apply_variant(s.image, rng, *variant);
        return r.transforms->apply(s.image, rng);
    } catch (const std::exception& e) {
        fail("data loader: sample ", index, " (epoch ", epoch, ", batch ", b, "): ", e.what());
    } catch (...) {
        fail("data loader: sample ", index, " (epoch ", epoch, ", batch ", b, "): unknown exception");
    }
}

// Builds batch b of the epoch. Returns early (with an incomplete batch) once `cancelled` says the
// epoch was abandoned; the caller then discards it.
Batch build_batch(const BatchRecipe& r, const std::vector<std::int64_t>& order, std::int64_t epoch,
                  std::int64_t b, const std::function<bool()>& cancelled) {
    const std::int64_t whole = std::min<std::int64_t>(
        r.options->batch_size, static_cast<std::int64_t>(order.size()) - b * r.options->batch_size);
    // this rank's piece of the batch (all of it in a single process)
    const dist::Range piece = dist::shard_range(whole, r.options->shard_rank, r.options->shard_count);
    const std::int64_t first = b * r.options->batch_size + piece.begin;
    const std::int64_t count = piece.end - piece.begin;
    Batch batch;
    batch.global_size = whole;
    batch.indices.assign(order.begin() + first, order.begin() + first + count);
    std::vector<std::int64_t> labels(static_cast<std::size_t>(count));
    const bool numbered = !r.batch_transform && r.transforms->variants() > 0;
    if (numbered) batch.variants.assign(static_cast<std::size_t>(count), 0);
    Shape image_shape;
    for (std::int64_t i = 0; i < count; ++i) {
        if (cancelled()) return batch;
        const std::int64_t index = batch.indices[i];
        const Tensor image =
            load_sample(r, index, epoch, b, labels[i], numbered ? &batch.variants[i] : nullptr);
        if (i == 0) {
            image_shape = image.shape();
            Shape shape = image_shape;
            shape.insert(shape.begin(), count);
            // batches for a GPU are built in page-locked memory, which copies at full speed
            batch.images = r.options->device.is_cuda() ? Tensor::empty_pinned(shape)
                                                       : Tensor::empty(shape);
        }
        require(image.shape() == image_shape, "data loader: sample ", index, " has shape ",
                shape_str(image.shape()), " after the transforms, but sample ", batch.indices[0],
                " of the same batch has ", shape_str(image_shape),
                "; a batch needs equal shapes (add resize, center_crop or random_resized_crop to "
                "the transforms)");
        const std::size_t bytes = static_cast<std::size_t>(image.numel()) * sizeof(float);
        std::memcpy(batch.images.data<float>() + i * image.numel(), image.data<float>(), bytes);
    }
    batch.labels = from_vector(labels, {count});
    if (r.batch_transform && count > 0) {
        SampleRng rng = SampleRng::for_batch(r.options->seed, static_cast<std::uint64_t>(epoch),
                                             static_cast<std::uint64_t>(b));
        r.batch_transform->apply(batch, r.dataset->num_classes(), rng);
    }
    return batch;
}

// build_batch with every failure captured, so it can cross from a worker to the caller's thread.
Built build_captured(const BatchRecipe& r, const std::vector<std::int64_t>& order,
                     std::int64_t epoch, std::int64_t b, const std::function<bool()>& cancelled) {
    Built out;
    try {
        out.batch = build_batch(r, order, epoch, b, cancelled);
    } catch (const Error&) {
        out.error = std::current_exception();
    } catch (const std::exception& e) {
        out.error = std::make_exception_ptr(Error(cat("data loader: batch ", b, ": ", e.what())));
    } catch (...) {
        out.error = std::make_exception_ptr(Error(cat("data loader: batch ", b, ": unknown exception")));
    }
    return out;
}

}  // namespace

struct DataLoader::State {
    std::shared_ptr<const Dataset> dataset;
    LoaderOptions options;
    TransformPipeline transforms;
    std::unique_ptr<const BatchTransform> batch_transform;
    std::int64_t batches = 0;  // per epoch

    // Everything below is shared with the workers and guarded by `mutex`, except `generation`,
    // which a worker also reads without the lock between samples to notice a cancelled epoch.
    std::mutex mutex;
    std::condition_variable work_available;  // workers wait here
    std::condition_variable batch_done;      // next() waits here
    std::vector<std::thread> workers;
    bool stopping = false;
    std::atomic<std::uint64_t> generation{0};
    bool started = false;
    std::int64_t epoch = 0;
    std::shared_ptr<const std::vector<std::int64_t>> order;
    std::int64_t next_to_build = 0, next_to_return = 0;
    std::map<std::int64_t, Built> done;  // the reorder buffer
    // GPU batches: the next batch, its copy to the GPU under way while the current step
    // computes (engine/cuda/upload.h). Touched by the consumer's thread only.
    struct Ahead {
        std::int64_t index = -1;
        Batch host;
        cuda::Upload images, labels, targets;
    };
    std::optional<Ahead> ahead;

    BatchRecipe recipe() const {
        return {dataset.get(), &options, &transforms, batch_transform.get()};
    }
    bool may_build() const {
        return started && next_to_build < batches && next_to_build < next_to_return + options.prefetch;
    }
    void work();
    void stop();
    ~State() { stop(); }
};

void DataLoader::State::work() {
    // Workers already split the work by batch; kernels run inside a sample stay on this thread
    // instead of each worker starting a team of OpenMP threads.
    set_num_threads(1);
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
        work_available.wait(lock, [&] { return stopping || may_build(); });
        if (stopping) return;
        const std::int64_t b = next_to_build++;
        const std::uint64_t my_generation = generation;
        const std::shared_ptr<const std::vector<std::int64_t>> my_order = order;
        const std::int64_t my_epoch = epoch;
        lock.unlock();
        Built built = build_captured(recipe(), *my_order, my_epoch, b,
                                     [&] { return generation.load() != my_generation; });
        lock.lock();
        if (generation != my_generation) continue;  // the epoch was restarted meanwhile
        done.emplace(b, std::move(built));
        batch_done.notify_all();
    }
}

void DataLoader::State::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex);
        stopping = true;
        ++generation;  // cancels the batches being built
    }
    work_available.notify_all();
    for (std::thread& t : workers)
        if (t.joinable()) t.join();
    workers.clear();
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
    require(dataset_ != nullptr, "DataLoader: no dataset");
    require(options_.batch_size >= 1, "DataLoader: batch_size must be at least 1, got ",
            options_.batch_size);
    require(options_.shard_count >= 1 && options_.shard_rank >= 0 &&
                options_.shard_rank < options_.shard_count,
            "DataLoader: shard ", options_.shard_rank, " of ", options_.shard_count, " does not exist");
    require(options_.workers >= 0 && options_.workers <= 256,
            "DataLoader: workers must be in [0, 256], got ", options_.workers);
    require(options_.prefetch >= 1, "DataLoader: prefetch must be at least 1, got ",
            options_.prefetch);
    state_ = std::make_unique<State>();
    State& s = *state_;
    s.dataset = dataset_;
    s.options = options_;
    s.transforms = TransformPipeline(options_.transforms);
    s.batch_transform = make_batch_transform(options_.batch_transform);
    const std::int64_t n = dataset_->size(), B = options_.batch_size;
    s.batches = options_.drop_last ? n / B : (n + B - 1) / B;
    // If starting a thread fails, ~State (run as the constructor unwinds) joins the others.
    for (int w = 0; w < options_.workers; ++w) s.workers.emplace_back([&s] { s.work(); });
}

// ~State stops and joins the workers; it runs before dataset_ is released, as members are
// destroyed in reverse order.
DataLoader::~DataLoader() = default;

std::int64_t DataLoader::batches_per_epoch() const { return state_->batches; }

void DataLoader::start_epoch(std::int64_t epoch, std::int64_t skip_batches) {
    State& s = *state_;
    require(epoch >= 0 && epoch <= 0xFFFFFFFFll, "DataLoader::start_epoch: epoch must be in [0, 2^32), got ",
            epoch);
    require(skip_batches >= 0 && skip_batches <= s.batches, "DataLoader::start_epoch: cannot skip ",
            skip_batches, " batches of an epoch of ", s.batches);
    auto order = std::make_shared<const std::vector<std::int64_t>>(
        epoch_order(dataset_->size(), options_.seed, epoch, options_.shuffle));
    {
        std::lock_guard<std::mutex> lock(s.mutex);
        ++s.generation;
        s.epoch = epoch;
        s.order = std::move(order);
        s.next_to_build = s.next_to_return = skip_batches;
        s.done.clear();
        s.started = true;
    }
    s.ahead.reset();  // waits for its copy, if one was under way
    s.work_available.notify_all();
}

// Takes batch next_to_return out of the reorder buffer if it is already built (never waits) and
// starts its copy to the GPU; next() hands it out when it is asked for.
void DataLoader::copy_ahead() {
    State& s = *state_;
    Built built;
    {
        std::lock_guard<std::mutex> lock(s.mutex);
        const std::int64_t b = s.next_to_return;
        auto it = s.done.find(b);
        if (b >= s.batches || it == s.done.end() || it->second.error) return;  // an error is thrown by next()
        built = std::move(it->second);
        s.done.erase(it);
        s.ahead.emplace();
        s.ahead->index = b;
    }
    State::Ahead& a = *s.ahead;
    a.host = std::move(built.batch);
    if (a.host.images.defined()) a.images = cuda::Upload(a.host.images, options_.device);
    a.labels = cuda::Upload(a.host.labels, options_.device);
    if (a.host.targets.defined()) a.targets = cuda::Upload(a.host.targets, options_.device);
}

bool DataLoader::next(Batch& batch) {
    State& s = *state_;
    Built built;
    if (options_.workers == 0) {
        require(s.started, "DataLoader::next: call start_epoch() first");
        if (s.next_to_return >= s.batches) return false;
        const std::int64_t b = s.next_to_return++;
        built = build_captured(s.recipe(), *s.order, s.epoch, b, [] { return false; });
    } else if (s.ahead && s.ahead->index == s.next_to_return) {
        // copied to the GPU while the previous step computed
        {
            std::lock_guard<std::mutex> lock(s.mutex);
            ++s.next_to_return;
        }
        s.work_available.notify_all();
        State::Ahead& a = *s.ahead;
        batch = std::move(a.host);
        if (a.images.started()) batch.images = a.images.take();
        batch.labels = a.labels.take();
        if (a.targets.started()) batch.targets = a.targets.take();
        s.ahead.reset();  // keeps the host buffers until their copies are done
        copy_ahead();
        return true;
    } else {
        std::unique_lock<std::mutex> lock(s.mutex);
        require(s.started, "DataLoader::next: call start_epoch() first");
        if (s.next_to_return >= s.batches) return false;
        const std::int64_t b = s.next_to_return;
        s.batch_done.wait(lock, [&] { return s.done.count(b) > 0; });
        auto it = s.done.find(b);
        built = std::move(it->second);
        s.done.erase(it);
        ++s.next_to_return;
        lock.unlock();
        s.work_available.notify_all();  // one more batch may be built ahead now
    }
    if (built.error) std::rethrow_exception(built.error);
    batch = std::move(built.batch);
    if (options_.device.is_cuda()) {  // delivered where the model is
        if (batch.images.defined()) batch.images = batch.images.to(options_.device);  // undefined: no samples here
        batch.labels = batch.labels.to(options_.device);
        if (batch.targets.defined()) batch.targets = batch.targets.to(options_.device);
        if (options_.workers > 0) copy_ahead();  // the next one travels while this one is used
    }
    return true;
}

std::string DataLoader::describe() const {
    const State& s = *state_;
    return cat("batch ", options_.batch_size, (options_.shuffle ? ", shuffled" : ", in order"),
               (options_.drop_last ? ", drop_last" : ""), ", ", options_.workers, " workers, ",
               s.batches, " batches per epoch; transforms: ",
               s.transforms.empty() ? std::string("none") : s.transforms.describe(),
               "; batch transform: ", s.batch_transform ? s.batch_transform->describe() : std::string("none"));
}

}  // namespace retort
