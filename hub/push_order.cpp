#include "hub/push_order.h"

namespace irt::hub {

PushOrder::Ticket::Ticket(PushOrder& order, std::string node_id, std::uint64_t first)
    : order_(order), node_id_(std::move(node_id)), it_(order.pushing_[node_id_].insert(first)) {}

PushOrder::Ticket::~Ticket() {
  auto& set = order_.pushing_[node_id_];
  set.erase(it_);
  if (set.empty()) order_.pushing_.erase(node_id_);
  order_.turn_.notify_all();
}

bool PushOrder::earlier_in_progress(const std::string& node_id, std::uint64_t first) const {
  auto it = pushing_.find(node_id);
  return it != pushing_.end() && !it->second.empty() && *it->second.begin() < first;
}

void PushOrder::wait_for_predecessor(std::unique_lock<std::mutex>& lock, const std::string& node_id,
                                     std::uint64_t first, const std::function<std::uint64_t()>& acked_seq) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    if (first <= acked_seq() + 1) return;
    auto waited = std::chrono::steady_clock::now() - start;
    if ((!earlier_in_progress(node_id, first) && waited >= grace_) || waited >= limit_) return;
    turn_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

}  // namespace irt::hub
