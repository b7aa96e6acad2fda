// threaded: cross-thread churn with many live blocks, after heaptrack's tests/manual/threaded.cpp
// (our own version). THREADS producer threads each allocate ROUNDS batches of BATCH objects of
// 1..1024 bytes and push them to a shared queue; one consumer thread frees them. A pool of LIVE
// blocks per producer stays allocated the whole run, so many blocks outlive the settle time.
//
// usage: threaded [THREADS [ROUNDS [BATCH [LIVE]]]]   (defaults: 4, 200, 500, 20000)
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    int batch = argc > 3 ? atoi(argv[3]) : 500;
    int live = argc > 4 ? atoi(argv[4]) : 20000;
    std::mutex lock;
    std::condition_variable ready;
    std::deque<std::vector<char *>> queue;
    int producing = threads;
    std::thread consumer([&] {
        for (;;) {
            std::unique_lock<std::mutex> guard(lock);
            ready.wait(guard, [&] { return !queue.empty() || producing == 0; });
            if (queue.empty()) return;
            std::vector<char *> items = std::move(queue.front());
            queue.pop_front();
            guard.unlock();
            for (char *item : items) delete[] item;
        }
    });
    std::vector<std::thread> producers;
    for (int t = 0; t < threads; t++)
        producers.emplace_back([&, t] {
            unsigned seed = 12345u + (unsigned)t;
            std::vector<char *> pool;
            for (int i = 0; i < live; i++) pool.push_back(new char[16 + (seed = seed * 1103515245u + 12345u) % 256]);
            for (int r = 0; r < rounds; r++) {
                std::vector<char *> items;
                for (int i = 0; i < batch; i++) items.push_back(new char[1 + (seed = seed * 1103515245u + 12345u) % 1024]);
                {
                    std::lock_guard<std::mutex> guard(lock);
                    queue.push_back(std::move(items));
                }
                ready.notify_one();
            }
            for (char *item : pool) delete[] item;
            std::lock_guard<std::mutex> guard(lock);
            producing--;
            ready.notify_all();
        });
    for (auto &producer : producers) producer.join();
    consumer.join();
    std::puts("done");
    return 0;
}
