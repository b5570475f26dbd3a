// engine/parallel.cpp: the thread-count setting, and the std::thread pool that parallel_for uses
// when retort is built without OpenMP.
#include "engine/parallel.h"

#include "engine/error.h"

#ifndef RETORT_HAVE_OPENMP
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>
#endif

namespace retort {

#ifdef RETORT_HAVE_OPENMP

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
    require(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
    omp_set_num_threads(n);
}

#else

namespace {

// OMP_NUM_THREADS is honoured as OpenMP would, so scripts that set it behave the same in both
// builds; otherwise every hardware thread.
int default_threads() {
    if (const char* env = std::getenv("OMP_NUM_THREADS")) {
        char* end = nullptr;
        const long n = std::strtol(env, &end, 10);
        if (end != env && n >= 1 && n <= 1024) return static_cast<int>(n);
    }
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

std::atomic<int> thread_setting{0};  // 0: not read yet
thread_local bool on_pool_thread = false;

// A loop handed to the pool: the chunks still to take, and the first error by chunk order.
struct Loop {
    std::int64_t chunks = 0;
    detail::ChunkFn chunk = nullptr;
    void* context = nullptr;
    std::atomic<std::int64_t> next{0};
    std::mutex error_mutex;
    std::exception_ptr error;
    std::int64_t error_chunk = 0;

    // Takes chunks until none is left. Which thread runs a chunk does not matter: each chunk's
    // work and its place in any combination are fixed by its index (parallel.h).
    void work() {
        for (std::int64_t c = next.fetch_add(1); c < chunks; c = next.fetch_add(1)) {
            try {
                chunk(context, c);
            } catch (...) {
                std::lock_guard lock(error_mutex);
                if (!error || c < error_chunk) {
                    error = std::current_exception();
                    error_chunk = c;
                }
            }
        }
    }
};

// Workers wait for a loop, work on it with the caller, and report when they leave it. One loop
// at a time: `busy` turns a second caller away (it runs its chunks itself) rather than queueing
// it, so two threads of a program (a data loader's workers, say) never wait for each other here.
class Pool {
public:
    ~Pool() { resize(0); }

    bool run(std::int64_t chunks, detail::ChunkFn chunk, void* context, int threads) {
        std::unique_lock busy_lock(busy_, std::try_to_lock);
        if (!busy_lock.owns_lock()) return false;
        if (static_cast<int>(workers_.size()) != threads - 1) resize(threads - 1);
        Loop loop;
        loop.chunks = chunks;
        loop.chunk = chunk;
        loop.context = context;
        {
            std::lock_guard lock(mutex_);
            loop_ = &loop;
            working_ = static_cast<int>(workers_.size());
            ++generation_;
        }
        wake_.notify_all();
        on_pool_thread = true;  // a parallel_for inside fn runs serially, as under OpenMP
        loop.work();
        on_pool_thread = false;
        std::unique_lock lock(mutex_);
        done_.wait(lock, [&] { return working_ == 0; });
        loop_ = nullptr;
        lock.unlock();
        if (loop.error) std::rethrow_exception(loop.error);
        return true;
    }

private:
    void resize(int workers) {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            ++generation_;
        }
        wake_.notify_all();
        for (std::thread& t : workers_) t.join();
        workers_.clear();
        stopping_ = false;
        // Each worker starts from the generation of now: a loop posted before the thread gets
        // to run is then still new to it.
        const std::uint64_t now = generation_;
        for (int i = 0; i < workers; ++i) workers_.emplace_back([this, now] { serve(now); });
    }

    void serve(std::uint64_t seen) {
        on_pool_thread = true;
        for (;;) {
            Loop* loop = nullptr;
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [&] { return generation_ != seen; });
                seen = generation_;
                if (stopping_) return;
                loop = loop_;
            }
            loop->work();
            std::lock_guard lock(mutex_);
            if (--working_ == 0) done_.notify_one();
        }
    }

    std::mutex busy_;   // held by the caller whose loop the pool runs
    std::mutex mutex_;  // guards everything below
    std::condition_variable wake_, done_;
    std::vector<std::thread> workers_;
    Loop* loop_ = nullptr;
    int working_ = 0;  // workers not yet finished with loop_
    std::uint64_t generation_ = 0;
    bool stopping_ = false;
};

Pool& pool() {
    static Pool instance;
    return instance;
}

}  // namespace

int num_threads() {
    int n = thread_setting.load(std::memory_order_relaxed);
    if (n == 0) {
        int expected = 0;
        thread_setting.compare_exchange_strong(expected, default_threads());
        n = thread_setting.load(std::memory_order_relaxed);
    }
    return n;
}

void set_num_threads(int n) {
    require(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
    thread_setting.store(n, std::memory_order_relaxed);
}

namespace detail {
bool run_chunks(std::int64_t chunks, ChunkFn chunk, void* context) {
    const int threads = num_threads();
    if (threads <= 1 || on_pool_thread) return false;
    return pool().run(chunks, chunk, context, threads);
}
}  // namespace detail

#endif

}  // namespace retort
