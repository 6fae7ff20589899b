// The versioned store: see store.hpp. (Being written.)
#include "storage/store.hpp"
