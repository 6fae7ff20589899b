// Tests of gateway/admin/prometheus_text.cpp, the text exposition format 0.0.4: HELP and TYPE lines,
// escaping, cumulative histogram buckets ending in +Inf equal to _count.
#include "admin/prometheus_text.hpp"

#include <doctest/doctest.h>

#include <array>
#include <limits>
#include <string>
#include <utility>

using namespace caregate::admin;

namespace {
using label = std::pair<std::string_view, std::string_view>;
}

TEST_CASE("prometheus text: a family's HELP and TYPE come first; HELP escapes backslash and newline, label values also the double quote") {
    prometheus_text page;
    page.family("caregate_example_total", "counter", "a \\ backslash\nand a \"quote\"");
    const std::array<label, 2> with{{{"path", "a\"b\\c\nd"}, {"status", "200"}}};
    page.sample("caregate_example_total", with, std::uint64_t{7});
    page.sample("caregate_example_total", {}, 0.5);
    CHECK(page.text() == "# HELP caregate_example_total a \\\\ backslash\\nand a \"quote\"\n"
                         "# TYPE caregate_example_total counter\n"
                         "caregate_example_total{path=\"a\\\"b\\\\c\\nd\",status=\"200\"} 7\n"
                         "caregate_example_total 0.5\n");
}

TEST_CASE("prometheus text: a histogram's buckets are cumulative, end with le=\"+Inf\", and _count equals it") {
    prometheus_text page;
    page.family("caregate_wait_seconds", "histogram", "waits");
    const std::array<double, 3> bounds{0.0025, 1, 30};
    const std::array<std::uint64_t, 3> within{2, 0, 3};
    const std::array<label, 1> with{{{"interaction", "read"}}};
    page.histogram("caregate_wait_seconds", with, bounds, within, 1, 12.25);
    CHECK(page.text() == "# HELP caregate_wait_seconds waits\n"
                         "# TYPE caregate_wait_seconds histogram\n"
                         "caregate_wait_seconds_bucket{interaction=\"read\",le=\"0.0025\"} 2\n"
                         "caregate_wait_seconds_bucket{interaction=\"read\",le=\"1\"} 2\n"
                         "caregate_wait_seconds_bucket{interaction=\"read\",le=\"30\"} 5\n"
                         "caregate_wait_seconds_bucket{interaction=\"read\",le=\"+Inf\"} 6\n"
                         "caregate_wait_seconds_sum{interaction=\"read\"} 12.25\n"
                         "caregate_wait_seconds_count{interaction=\"read\"} 6\n");
}

TEST_CASE("prometheus text: values are the shortest text that reads back, and the infinities and NaN by name") {
    CHECK(format_value(0.0005) == "0.0005");
    CHECK(format_value(30) == "30");
    CHECK(format_value(0.1 + 0.2) == "0.30000000000000004");
    constexpr double infinity = std::numeric_limits<double>::infinity();
    CHECK(format_value(infinity) == "+Inf");
    CHECK(format_value(-infinity) == "-Inf");
    CHECK(format_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
}
