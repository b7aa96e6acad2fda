// threaded: cross-thread churn with many live blocks, after heaptrack's tests/manual/threaded.cpp
// (our own version). THREADS producer threads each allocate ROUNDS batches of BATCH objects of
// 1..1024 bytes and push them to a shared queue; one consumer thread frees them. A pool of LIVE
// blocks per producer stays allocated the whole run, so many blocks outlive the settle time.
//
// With "sized", every block is freed with C++14's sized operator delete(void *, size_t), as
// `delete p` of a complete type compiles to with -fsized-deallocation (heaptrack's threaded.cpp
// deletes its objects that way): the tracker's sized-delete check runs on every free. Without
// it, delete[] of char arrays, which is the unsized operator delete[](void *).
//
// usage: threaded [THREADS [ROUNDS [BATCH [LIVE [sized]]]]]   (defaults: 4, 200, 500, 20000)
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

struct Block { char *data; size_t size; };
static bool sized = false;

static Block allocate(size_t size) {
    return {sized ? static_cast<char *>(::operator new(size)) : new char[size], size};
}

static void release(Block block) {
    if (sized)
        ::operator delete(block.data, block.size);
    else
        delete[] block.data;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    int batch = argc > 3 ? atoi(argv[3]) : 500;
    int live = argc > 4 ? atoi(argv[4]) : 20000;
    sized = argc > 5 && strcmp(argv[5], "sized") == 0;
    std::mutex lock;
    std::condition_variable ready;
    std::deque<std::vector<Block>> queue;
    int producing = threads;
    std::thread consumer([&] {
        for (;;) {
            std::unique_lock<std::mutex> guard(lock);
            ready.wait(guard, [&] { return !queue.empty() || producing == 0; });
            if (queue.empty()) return;
            std::vector<Block> items = std::move(queue.front());
            queue.pop_front();
            guard.unlock();
            for (Block item : items) release(item);
        }
    });
    std::vector<std::thread> producers;
    for (int t = 0; t < threads; t++)
        producers.emplace_back([&, t] {
            unsigned seed = 12345u + (unsigned)t;
            std::vector<Block> pool;
            for (int i = 0; i < live; i++) pool.push_back(allocate(16 + (seed = seed * 1103515245u + 12345u) % 256));
            for (int r = 0; r < rounds; r++) {
                std::vector<Block> items;
                for (int i = 0; i < batch; i++) items.push_back(allocate(1 + (seed = seed * 1103515245u + 12345u) % 1024));
                {
                    std::lock_guard<std::mutex> guard(lock);
                    queue.push_back(std::move(items));
                }
                ready.notify_one();
            }
            for (Block item : pool) release(item);
            std::lock_guard<std::mutex> guard(lock);
            producing--;
            ready.notify_all();
        });
    for (auto &producer : producers) producer.join();
    consumer.join();
    std::puts("done");
    return 0;
}
