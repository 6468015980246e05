#include "engine/concurrent_copies.h"

#include <algorithm>

namespace tnl {

namespace {

bool holds(const std::vector<StateRef>& refs, StateRef ref) { return std::find(refs.begin(), refs.end(), ref) != refs.end(); }

}  // namespace

bool ConcurrentCopies::conflicts(const StateCopy& copy) const {
  return holds(writes_, copy.from) || holds(writes_, copy.to) || holds(reads_, copy.to);
}

void ConcurrentCopies::add(const StateCopy& copy) {
  reads_.push_back(copy.from);
  writes_.push_back(copy.to);
}

void ConcurrentCopies::clear() {
  reads_.clear();
  writes_.clear();
}

}  // namespace tnl
