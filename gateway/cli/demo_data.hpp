// Demo data for `caregate serve --demo-data`: three test-range citizens with a small record each.
#pragma once

#include "storage/store.hpp"

namespace caregate::cli {

/// Writes the demo resources with fixed ids as updates, so loading twice changes nothing.
/// Returns how many resources were created or changed; throws std::runtime_error on a failure.
int load_demo_data(storage::store& store);

} // namespace caregate::cli
