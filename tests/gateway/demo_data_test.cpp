// The demo data of `caregate serve --demo-data` (gateway/cli/demo_data.cpp): valid, idempotent, and
// carrying the relationships the README's examples rely on.
#include "application_fixture.hpp"

#include "cli/demo_data.hpp"

using namespace caregate::testing;

TEST_CASE("demo data: loads, loads again without change, and each demo organisation sees its citizen") {
    application_fixture f;
    CHECK(caregate::cli::load_demo_data(*f.store) == 9);
    CHECK(caregate::cli::load_demo_data(*f.store) == 0);
    CHECK(f.call_as(gp_clinician(), "GET", "/Patient/9000000009").status == 200);
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/demo-observation-1").status == 200);
    CHECK(f.call_as(social_worker(), "GET", "/Patient/9000000017").status == 200);
    CHECK(f.call_as(acute_clinician(), "GET", "/Patient/9000000025").status == 200);
    CHECK(f.call_as(acute_clinician(), "GET", "/Patient/9000000009").status == 404);
}
