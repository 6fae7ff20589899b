// The route table.
#include "rest/http.hpp"
