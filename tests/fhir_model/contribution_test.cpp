// Tests for fhir_model/src/contribution.cpp (fhir_model/contribution.hpp): a citizen's contribution is
// marked with the provenance tag (once), meta.source and the citizen as performer, author, source or
// sender; content naming someone else is refused; look-alikes of the marks are taken out for every
// writer; everything else, numbers included, is kept as sent.
#include "fhir_model/contribution.hpp"
#include "fhir_model/resource.hpp"

#include <doctest/doctest.h>

#include <string>

namespace fhir = caregate::fhir;

namespace {

constexpr const char* tom = "9000000009";
const std::string tag =
    R"({"system":"https://fhir.caregate.nhs.uk/CodeSystem/provenance","code":"patient-contributed","display":"Contributed by the patient"})";
const std::string source = R"("source":"https://fhir.caregate.nhs.uk/patient-endpoint")";

std::string marked(const std::string& resource) {
    auto out = fhir::mark_contribution(resource, tom);
    INFO((out.ok() ? std::string() : out.failure().issues.front().diagnostics));
    REQUIRE(out.ok());
    return *out;
}

fhir::error refused(const std::string& resource) {
    auto out = fhir::mark_contribution(resource, tom);
    REQUIRE_FALSE(out.ok());
    return out.failure();
}

} // namespace

TEST_CASE("contribution: an Observation gains the tag, meta.source and the citizen as performer") {
    const std::string reading =
        R"({"resourceType":"Observation","status":"final","code":{"text":"weight"},"subject":{"reference":"Patient/9000000009"},"valueQuantity":{"value":72.10,"unit":"kg"}})";
    CHECK(marked(reading) ==
          R"({"resourceType":"Observation","status":"final","code":{"text":"weight"},"subject":{"reference":"Patient/9000000009"},"valueQuantity":{"value":72.10,"unit":"kg"},"performer":[{"reference":"Patient/9000000009"}],"meta":{"tag":[)" +
              tag + "]," + source + "}}");
}

TEST_CASE("contribution: marking twice changes nothing (an update keeps one tag, one performer)") {
    const std::string once = marked(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/9000000009"}})");
    CHECK(marked(once) == once);
    CHECK(once.find(tag) != std::string::npos);
}

TEST_CASE("contribution: the client's meta is kept, its source replaced, its own tags kept beside ours") {
    const std::string sent =
        R"({"resourceType":"Observation","meta":{"source":"#my-app","tag":[{"system":"http://example.org/app","code":"home"}],"profile":["http://example.org/p"]},"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/9000000009"},"performer":[{"reference":"Patient/9000000009","display":"me"}]})";
    CHECK(marked(sent) ==
          R"({"resourceType":"Observation","meta":{"source":"https://fhir.caregate.nhs.uk/patient-endpoint","tag":[{"system":"http://example.org/app","code":"home"},)" +
              tag +
              R"(],"profile":["http://example.org/p"]},"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/9000000009"},"performer":[{"reference":"Patient/9000000009","display":"me"}]})");
}

TEST_CASE("contribution: the citizen named by identifier counts as the performer") {
    const std::string sent =
        R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/9000000009"},"performer":[{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}}]})";
    const std::string out = marked(sent);
    CHECK(out.find(R"("performer":[{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}}])") !=
          std::string::npos);
}

TEST_CASE("contribution: a performer, author, source or sender other than the citizen is refused (422)") {
    struct row {
        const char* resource;
        const char* expression;
    };
    const row rows[] = {
        {R"({"resourceType":"Observation","performer":[{"reference":"Patient/9000000009"},{"reference":"Practitioner/gp-1"}]})",
         "Observation.performer[1]"},
        {R"({"resourceType":"Observation","performer":[{"reference":"Patient/9000000017"}]})", "Observation.performer[0]"},
        {R"({"resourceType":"Observation","performer":[{"display":"Dr Who"}]})", "Observation.performer[0]"},
        {R"({"resourceType":"Observation","performer":[{"reference":"Patient/9000000009","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000017"}}]})",
         "Observation.performer[0]"},
        {R"({"resourceType":"Observation","performer":[{"reference":"Patient/9000000009","type":"RelatedPerson"}]})",
         "Observation.performer[0]"},
        {R"({"resourceType":"Consent","performer":[{"reference":"Organization/A81001"}]})", "Consent.performer[0]"},
        {R"({"resourceType":"Communication","sender":{"reference":"Practitioner/gp-1"}})", "Communication.sender"},
        {R"({"resourceType":"QuestionnaireResponse","author":{"reference":"Practitioner/gp-1"}})", "QuestionnaireResponse.author"},
        {R"({"resourceType":"QuestionnaireResponse","source":{"reference":"RelatedPerson/carer"}})", "QuestionnaireResponse.source"},
    };
    for (const row& r : rows) {
        CAPTURE(r.resource);
        const fhir::error failure = refused(r.resource);
        CHECK(failure.kind == fhir::category::invalid);
        REQUIRE(failure.issues.size() == 1);
        CHECK(failure.issues[0].code == "business-rule");
        CHECK(failure.issues[0].expression == r.expression);
        // The diagnostics name the rule, never the content.
        CHECK(failure.issues[0].diagnostics.find("9000000017") == std::string::npos);
        CHECK(failure.issues[0].diagnostics.find("gp-1") == std::string::npos);
    }
}

TEST_CASE("contribution: Communication, QuestionnaireResponse and Consent name the citizen where absent") {
    CHECK(marked(R"({"resourceType":"Communication","status":"completed"})")
              .starts_with(R"({"resourceType":"Communication","status":"completed","sender":{"reference":"Patient/9000000009"},"meta":)"));
    CHECK(marked(R"({"resourceType":"QuestionnaireResponse","status":"completed"})")
              .starts_with(R"({"resourceType":"QuestionnaireResponse","status":"completed","author":{"reference":"Patient/9000000009"},"source":{"reference":"Patient/9000000009"},"meta":)"));
    CHECK(marked(R"({"resourceType":"QuestionnaireResponse","author":{"reference":"Patient/9000000009"},"status":"completed"})")
              .starts_with(R"({"resourceType":"QuestionnaireResponse","author":{"reference":"Patient/9000000009"},"status":"completed","source":{"reference":"Patient/9000000009"},"meta":)"));
    CHECK(marked(R"({"resourceType":"Consent","status":"active"})")
              .starts_with(R"({"resourceType":"Consent","status":"active","performer":[{"reference":"Patient/9000000009"}],"meta":)"));
    // Other types get the marks on meta only.
    CHECK(marked(R"({"resourceType":"Goal","lifecycleStatus":"active"})") ==
          R"({"resourceType":"Goal","lifecycleStatus":"active","meta":{"tag":[)" + tag + "]," + source + "}}");
}

TEST_CASE("contribution: wrong shapes are left for validation; what is not JSON is malformed") {
    // meta and performer of the wrong JSON type are not marked (validation refuses them).
    CHECK(marked(R"({"resourceType":"Observation","meta":"x","performer":{"reference":"Patient/9000000009"}})") ==
          R"({"resourceType":"Observation","meta":"x","performer":{"reference":"Patient/9000000009"}})");
    CHECK(marked(R"([1,2])") == "[1,2]");
    CHECK(refused(R"({"resourceType":)").kind == fhir::category::malformed);
}

TEST_CASE("contribution: a marked Observation is a valid resource of the citizen, numbers as written") {
    auto prepared = fhir::prepare_resource(
        marked(R"({"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"subject":{"reference":"Patient/9000000009"},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":132.0,"unit":"mmHg"}}]})"),
        "Observation");
    REQUIRE(prepared.ok());
    CHECK(prepared->content.find(R"("value":132.0)") != std::string::npos);
    CHECK(prepared->content.find(R"("source":"https://fhir.caregate.nhs.uk/patient-endpoint")") != std::string::npos);
    CHECK(prepared->content.find(tag) != std::string::npos);
    REQUIRE(prepared->citizens.size() >= 1);
    for (const auto& link : prepared->citizens)
        CHECK(link.nhs_number == tom);
}

TEST_CASE("provenance: a provider's look-alike marks are taken out, in any case, system or place") {
    auto provider = [](const std::string& meta) {
        auto out = fhir::mark_provenance(R"({"resourceType":"Observation","meta":)" + meta + R"(,"status":"final"})", fhir::provenance_marks{});
        REQUIRE(out.ok());
        return *out;
    };
    const std::string bare = R"({"resourceType":"Observation","status":"final"})";
    CHECK(provider(R"({"tag":[)" + tag + "]}") == bare);
    CHECK(provider(R"({"tag":[{"code":"patient-contributed"}]})") == bare);                                  // no system
    CHECK(provider(R"({"tag":[{"system":"http://example.org","code":"Patient_Contributed"}]})") == bare);    // other case
    CHECK(provider(R"({"security":[{"system":"https://fhir.caregate.nhs.uk/CodeSystem/provenance","code":"x"}]})") == bare);
    CHECK(provider(R"({"tag":[{"system":"HTTP://FHIR.CAREGATE.NHS.UK/CodeSystem/Provenance","code":"x"}]})") == bare);
    CHECK(provider(R"({"tag":[{"system":"http://example.org","code":"pc","display":"Contributed by the Patient"}]})") == bare);
    CHECK(provider(R"({"tag":[{"system":"https://fhir.caregate.nhs.uk/CodeSystem/provenance","code":"patient\u002dcontributed"}]})") == bare);
    CHECK(provider(R"({"source":"https://fhir.caregate.nhs.uk/patient-endpoint"})") == bare);
    CHECK(provider(R"({"source":"HTTPS://Fhir.Caregate.NHS.uk/anything"})") == bare);
    // The provider's own marks stay, in their order.
    CHECK(provider(R"({"source":"https://gp.example/system","tag":[{"system":"http://example.org","code":"home"},{"code":"patient-contributed"}]})") ==
          R"({"resourceType":"Observation","meta":{"source":"https://gp.example/system","tag":[{"system":"http://example.org","code":"home"}]},"status":"final"})");
    // Text that cannot hold a mark comes back as it was, byte for byte.
    const std::string plain = R"({"resourceType":"Observation", "status":"final"})";
    CHECK(*fhir::mark_provenance(plain, fhir::provenance_marks{}) == plain);
}

TEST_CASE("provenance: a contribution corrected by someone else keeps the server's marks, and only them") {
    auto out = fhir::mark_provenance(
        R"({"resourceType":"Observation","meta":{"tag":[{"code":"PATIENT-CONTRIBUTED"}],"source":"#ics"},"status":"final"})",
        fhir::provenance_marks{"", fhir::contributed_by::patient});
    REQUIRE(out.ok());
    CHECK(*out == R"({"resourceType":"Observation","meta":{)" + source + R"(,"tag":[)" + tag + R"(]},"status":"final"})");
    // No performer is filled in: that is the citizen's own writing only.
    CHECK(out->find("performer") == std::string::npos);
}

// Every write through the API marks and validates in one parse (fhir::provenance_marks): it must
// make exactly what marking the text and then preparing it makes, the refusals included.
TEST_CASE("provenance: prepare_resource with marks is mark_provenance then prepare_resource, from one parse") {
    const std::string observation_body =
        R"({"resourceType":"Observation","meta":{"tag":[{"code":"PATIENT-CONTRIBUTED"},{"system":"http://example.org","code":"home"}],"source":"https://fhir.caregate.nhs.uk/x"},"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"subject":{"reference":"Patient/9000000009"},"valueQuantity":{"value":132.0,"unit":"mmHg"}})";
    const std::string bodies[] = {
        observation_body,
        R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/9000000009"},"performer":[{"reference":"Practitioner/gp-1"}]})",
        R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/9000000009"},"meta":"x"})",
        R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/9000000009"},"meta":{"tag":[)" + tag + "]}}",
        R"({"resourceType":"QuestionnaireResponse","status":"completed","subject":{"reference":"Patient/9000000009"}})",
        R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"walk"},"subject":{"reference":"Patient/9000000009"}})",
        R"({"resourceType":"Observation","status":"final"})", // invalid: no code, no citizen
        R"({"resourceType":"Goal","status":"final"})",        // another type than the request's
        R"({"resourceType":)",                                 // not JSON
        R"([1,2])",
    };
    const fhir::provenance_marks writers[] = {{tom, fhir::contributed_by::patient},
                                              {"", fhir::contributed_by::patient},
                                              {"", fhir::contributed_by::nobody},
                                              {tom, fhir::contributed_by::carer, "carer-1"},
                                              {"", fhir::contributed_by::carer}};
    for (const std::string& body : bodies)
        for (const fhir::provenance_marks& marks : writers) {
            CAPTURE(body);
            CAPTURE(marks.citizen);
            CAPTURE(static_cast<int>(marks.contribution));
            CAPTURE(marks.carer);
            const auto type = body.find("\"Goal\"") != std::string::npos && body.find("lifecycleStatus") != std::string::npos
                                  ? "Goal"
                              : body.find("QuestionnaireResponse") != std::string::npos ? "QuestionnaireResponse"
                                                                                        : "Observation";
            auto fused = fhir::prepare_resource(body, type, marks);
            auto text = fhir::mark_provenance(body, marks);
            auto two_steps = text ? fhir::prepare_resource(*text, type) : fhir::result<fhir::prepared_resource>(text.failure());
            REQUIRE(fused.ok() == two_steps.ok());
            if (fused.ok()) {
                CHECK(fused->content == two_steps->content);
                CHECK(fused->access.labels == two_steps->access.labels);
                CHECK(fused->access.facets == two_steps->access.facets);
                CHECK(fused->citizens.size() == two_steps->citizens.size());
            } else {
                CHECK(fused.failure().kind == two_steps.failure().kind);
            }
        }
    // The first one, as a citizen's contribution: the look-alike tag gone, the server's marks in.
    auto contribution = fhir::prepare_resource(observation_body, "Observation", fhir::provenance_marks{tom, fhir::contributed_by::patient});
    REQUIRE(contribution.ok());
    CHECK(contribution->content.find(tag) != std::string::npos);
    CHECK(contribution->content.find("PATIENT-CONTRIBUTED") == std::string::npos);
    CHECK(contribution->content.find(R"("value":132.0)") != std::string::npos);
}

TEST_CASE("provenance: a carer's contribution carries the carer's tag and names their RelatedPerson, nobody else") {
    const fhir::provenance_marks carer{tom, fhir::contributed_by::carer, "rp-1"};
    const std::string carer_tag =
        R"({"system":"https://fhir.caregate.nhs.uk/CodeSystem/provenance","code":"carer-contributed","display":"Contributed by a carer on the patient's behalf"})";
    // The maker filled in as the carer; a look-alike of either tag taken out, the carer's put in.
    auto out = fhir::mark_provenance(
        R"({"resourceType":"Observation","meta":{"tag":[{"code":"patient-contributed"},{"code":"Carer_Contributed"}]},"status":"final"})", carer);
    REQUIRE(out.ok());
    CHECK(*out == R"({"resourceType":"Observation","status":"final","performer":[{"reference":"RelatedPerson/rp-1"}],"meta":{"tag":[)" +
                      carer_tag + R"(],)" + source + "}}");
    // Marking again changes nothing: the tag keeps its place.
    auto again = fhir::mark_provenance(*out, carer);
    REQUIRE(again.ok());
    CHECK(*again == *out);
    // Naming the citizen, or another carer, as the maker is refused: a carer writes in their own name.
    for (const std::string& maker : {std::string(R"({"reference":"Patient/9000000009"})"),
                                     std::string(R"({"reference":"RelatedPerson/rp-2"})"),
                                     std::string(R"({"reference":"RelatedPerson/rp-1","type":"Patient"})")}) {
        CAPTURE(maker);
        auto named = fhir::mark_provenance(R"({"resourceType":"Communication","status":"completed","sender":)" + maker + "}", carer);
        REQUIRE_FALSE(named.ok());
        CHECK(named.failure().issues.front().expression == "Communication.sender");
        CHECK(named.failure().issues.front().diagnostics.find("RelatedPerson/rp-1") != std::string::npos);
    }
    auto own = fhir::mark_provenance(R"({"resourceType":"Communication","status":"completed","sender":{"reference":"RelatedPerson/rp-1"}})", carer);
    REQUIRE(own.ok());
    CHECK(own->find(carer_tag) != std::string::npos);
    // A carer's item corrected by the ICS's services (no maker) keeps the carer's tag, not the patient's.
    auto corrected = fhir::mark_provenance(*out, fhir::provenance_marks{"", fhir::contributed_by::carer});
    REQUIRE(corrected.ok());
    CHECK(*corrected == *out);
    CHECK(corrected->find("patient-contributed") == std::string::npos);
}
