#include "pipeline/worker_pool.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "base/error.h"

namespace a2a {

namespace {

class TaskGraphRun {
 public:
  TaskGraphRun(const TaskGraph& graph, const std::function<void(const std::string&)>& task) : task_(task) {
    for (const auto& id : graph.order) {
      auto it = graph.upstream.find(id);
      waiting_[id] = it == graph.upstream.end() ? 0 : it->second.size();
      if (waiting_[id] == 0) ready_.push_back(id);
      if (it == graph.upstream.end()) continue;
      for (const auto& up : it->second) downstream_[up].push_back(id);
    }
  }

  void run_inline() {
    while (!ready_.empty() && !failure_) {
      std::string id = ready_.front();
      ready_.pop_front();
      run_one(id);
    }
    finish();
  }

  void run_threads(int workers) {
    std::vector<std::thread> threads;
    for (int i = 0; i < workers; ++i) threads.emplace_back([this] { work(); });
    for (auto& t : threads) t.join();
    finish();
  }

 private:
  void work() {
    for (;;) {
      std::string id;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return failure_ || !ready_.empty() || running_ == 0; });
        if (failure_ || ready_.empty()) return;
        id = ready_.front();
        ready_.pop_front();
        ++running_;
      }
      run_one(id);
      std::lock_guard<std::mutex> lock(mutex_);
      --running_;
      changed_.notify_all();
    }
  }

  void run_one(const std::string& id) {
    try {
      task_(id);
      complete(id);
    } catch (...) {
      fail(std::current_exception());
    }
  }

  void complete(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& d : downstream_[id])
      if (--waiting_[d] == 0) ready_.push_back(d);
    changed_.notify_all();
  }

  void fail(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mutex_);
    bool is_cancel = false;
    try {
      std::rethrow_exception(e);
    } catch (const Error& err) {
      is_cancel = err.kind() == ErrorKind::Cancelled;
    } catch (...) {
    }
    if (!failure_ || (failure_is_cancel_ && !is_cancel)) {
      failure_ = e;
      failure_is_cancel_ = is_cancel;
    }
    changed_.notify_all();
  }

  void finish() {
    if (failure_) std::rethrow_exception(failure_);
  }

  const std::function<void(const std::string&)>& task_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::string> ready_;
  std::map<std::string, size_t> waiting_;
  std::map<std::string, std::vector<std::string>> downstream_;
  size_t running_ = 0;
  std::exception_ptr failure_;
  bool failure_is_cancel_ = false;
};

}  // namespace

void run_task_graph(const TaskGraph& graph, int workers, const std::function<void(const std::string&)>& task) {
  TaskGraphRun run(graph, task);
  workers = std::max(1, std::min<int>(workers, static_cast<int>(graph.order.size())));
  if (workers == 1) {
    run.run_inline();
  } else {
    run.run_threads(workers);
  }
}

}  // namespace a2a
