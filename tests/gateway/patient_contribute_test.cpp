// Citizens contributing to their own record on the patient-facing endpoint (and the objection they
// may record): what a P9 citizen writes is marked as patient-contributed (tag,
// meta.source, themselves as performer, author or sender) and shown so to professionals; only the
// kinds the policy grants; never about or in the name of someone else; never a change to what a
// professional wrote; and an objection they record, then withdraw, limits and restores sharing.
#include "patient_fixture.hpp"

using namespace caregate;
using namespace caregate::testing;

namespace {

const std::string provenance = "https://fhir.caregate.nhs.uk/CodeSystem/provenance";
const std::string contributor_source = "https://fhir.caregate.nhs.uk/patient-endpoint";

/// A citizen token whose app may write as well as read.
std::string writer_token(const std::string& nhs, const std::string& proofing = "P9") {
    return citizen_token(nhs, proofing, {"patient/*.cruds"});
}

std::string blood_pressure(const std::string& nhs, const std::string& extra = {}, const std::string& category = "vital-signs") {
    return R"({"resourceType":"Observation",)" + (extra.empty() ? "" : extra + ",") +
           R"("status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":")" +
           category +
           R"("}]}],"code":{"coding":[{"system":"http://loinc.org","code":"85354-9","display":"Blood pressure panel"}]},"subject":{"reference":"Patient/)" +
           nhs +
           R"("},"effectiveDateTime":"2026-11-20T08:15:00Z","component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":132.0,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":84,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})";
}

std::string objection(const std::string& nhs, const std::string& status = "active", const std::string& id = {}) {
    return R"({"resourceType":"Consent",)" + (id.empty() ? "" : R"("id":")" + id + R"(",)") + R"("status":")" + status +
           R"(","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/)" +
           nhs + R"("},"provision":{"type":"deny"}})";
}

/// How many codings of meta.tag are the patient-contributed tag.
int contribution_tags(const rapidjson::Value& resource) {
    int found = 0;
    if (resource.HasMember("meta") && resource["meta"].HasMember("tag"))
        for (const auto& tag : resource["meta"]["tag"].GetArray())
            found += tag["system"].GetString() == provenance && std::string(tag["code"].GetString()) == "patient-contributed";
    return found;
}

bool names(const rapidjson::Value& reference, const std::string& target) {
    return reference.IsObject() && reference.HasMember("reference") && reference["reference"].GetString() == target;
}

struct contribute_fixture : patient_fixture {
    const std::string token = writer_token(tom);

    http::response contribute(const std::string& method, const std::string& target, const std::string& body = {}) {
        return as_citizen(token, method, target, body);
    }
};

} // namespace

TEST_CASE("contribute: a home blood pressure is stored as the citizen's, and the GP reads it with its provenance") {
    contribute_fixture f;
    auto created = f.contribute("POST", "/Observation", blood_pressure(tom));
    REQUIRE_MESSAGE(created.status == 201, created.body);
    CHECK(created.header("ETag") == "W/\"1\"");
    const auto stored = json_of(created);
    const std::string id = stored["id"].GetString();
    CHECK(contribution_tags(stored) == 1);
    CHECK(stored["meta"]["source"] == contributor_source.c_str());
    REQUIRE(stored["performer"].Size() == 1);
    CHECK(names(at(stored, "performer", 0), "Patient/9000000009"));
    CHECK(created.body.find(R"("value":132.0)") != std::string::npos); // numbers as the app wrote them

    // The citizen owns it: their organisation, patient:{nhs}.
    auto current = f.store->read_current("Observation", id);
    REQUIRE(current.ok());
    CHECK(current->owner == "patient:9000000009");

    // The done-criterion: the GP sees it, and sees that the patient contributed it.
    auto read = f.call_as(gp_clinician(), "GET", "/Observation/" + id);
    REQUIRE(read.status == 200);
    const auto seen = json_of(read);
    CHECK(contribution_tags(seen) == 1);
    CHECK(seen["meta"]["source"] == contributor_source.c_str());
    CHECK(names(at(seen, "performer", 0), "Patient/9000000009"));
    // ... and finds the patient's contributions by their tag.
    CHECK(f.ids_of(f.call_as(gp_clinician(), "GET",
                             "/Observation?patient=9000000009&_tag=" + provenance + "%7Cpatient-contributed")) ==
          std::vector<std::string>{"Observation/" + id});
}

TEST_CASE("contribute: only the kinds the policy grants: home readings yes, a laboratory result no (403)") {
    contribute_fixture f;
    CHECK(f.contribute("POST", "/Observation", blood_pressure(tom, {}, "activity")).status == 201);
    CHECK(f.contribute("POST", "/Observation", blood_pressure(tom, {}, "social-history")).status == 201);
    auto lab = f.contribute("POST", "/Observation", blood_pressure(tom, {}, "laboratory"));
    CHECK(lab.status == 403);
    CHECK(at(json_of(lab), "issue", 0, "code") == "forbidden");
    // Types the policy does not grant at all, e.g. a diagnosis.
    CHECK(f.contribute("POST", "/Condition",
                       R"({"resourceType":"Condition","code":{"text":"self-diagnosed"},"subject":{"reference":"Patient/9000000009"}})")
              .status == 403);
    // The app's scopes narrow it too: a read-only app cannot write.
    CHECK(f.as_citizen(citizen_token(tom), "POST", "/Observation", blood_pressure(tom)).status == 403);
}

TEST_CASE("contribute: P5 and P0 cannot contribute (403)") {
    contribute_fixture f;
    CHECK(f.as_citizen(writer_token(tom, "P5"), "POST", "/Observation", blood_pressure(tom)).status == 403);
    CHECK(f.as_citizen(writer_token(tom, "P5"), "POST", "/Consent", objection(tom)).status == 403);
    CHECK(f.as_citizen(writer_token(tom, "P0"), "POST", "/Observation", blood_pressure(tom)).status == 403);
}

TEST_CASE("contribute: never about another citizen, never in another's name (422)") {
    contribute_fixture f;
    auto other = f.contribute("POST", "/Observation", blood_pressure(bunmi));
    CHECK(other.status == 422);
    // The same answer as for a citizen the server does not hold, so it reveals nothing.
    auto unknown = f.contribute("POST", "/Observation", blood_pressure("9000000025"));
    CHECK(unknown.status == 422);
    CHECK(at(json_of(other), "issue", 0, "diagnostics") == at(json_of(unknown), "issue", 0, "diagnostics"));

    auto clinician = f.contribute("POST", "/Observation", blood_pressure(tom, R"("performer":[{"reference":"Practitioner/gp-1"}])"));
    CHECK(clinician.status == 422);
    CHECK(at(json_of(clinician), "issue", 0, "expression", 0) == "Observation.performer[0]");
    CHECK(f.contribute("POST", "/Observation", blood_pressure(tom, R"("performer":[{"reference":"Patient/9000000017"}])")).status == 422);
    CHECK(f.contribute("POST", "/Communication",
                       R"({"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/9000000009"},"sender":{"reference":"Organization/A81001"}})")
              .status == 422);
    // Naming themselves is fine, and not doubled.
    auto own = f.contribute("POST", "/Observation", blood_pressure(tom, R"("performer":[{"reference":"Patient/9000000009"}])"));
    REQUIRE(own.status == 201);
    CHECK(json_of(own)["performer"].Size() == 1);
}

TEST_CASE("contribute: a citizen cannot change or delete what a professional wrote (403), only their own") {
    contribute_fixture f;
    const std::string gp_item = f.tom_observation;
    const std::string changed_gp_item =
        R"({"resourceType":"Observation","id":")" + gp_item +
        R"(","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/9000000009"},"valueQuantity":{"value":60,"unit":"/min"}})";
    CHECK(f.contribute("PUT", "/Observation/" + gp_item, changed_gp_item).status == 403);
    CHECK(f.contribute("DELETE", "/Observation/" + gp_item).status == 403);
    CHECK(f.as_citizen(f.token, "PATCH", "/Observation/" + gp_item,
                       R"([{"op":"replace","path":"/status","value":"entered-in-error"}])",
                       {{"Content-Type", "application/json-patch+json"}})
              .status == 403);
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/" + gp_item).header("ETag") == "W/\"1\"");

    // Their own: updated (the marks kept once), patched, deleted.
    const std::string id = patient_fixture::created_id(f.contribute("POST", "/Observation", blood_pressure(tom)));
    std::string corrected = blood_pressure(tom, R"("id":")" + id + R"(")");
    corrected.replace(corrected.find("132.0"), 5, "128.0");
    auto updated = f.contribute("PUT", "/Observation/" + id, corrected);
    REQUIRE_MESSAGE(updated.status == 200, updated.body);
    CHECK(updated.header("ETag") == "W/\"2\"");
    const auto after_update = json_of(updated);
    CHECK(contribution_tags(after_update) == 1);
    CHECK(after_update["performer"].Size() == 1);
    // Sending back what was read (the marks included) changes nothing: no new version.
    auto again = f.contribute("PUT", "/Observation/" + id, updated.body);
    CHECK(again.status == 200);
    CHECK(again.header("ETag") == "W/\"2\"");
    // An update cannot turn it into a kind they may not write.
    CHECK(f.contribute("PUT", "/Observation/" + id, blood_pressure(tom, R"("id":")" + id + R"(")", "laboratory")).status == 403);
    // A patch that drops the marks gets them back.
    auto patched = f.as_citizen(f.token, "PATCH", "/Observation/" + id,
                                R"([{"op":"remove","path":"/meta"},{"op":"remove","path":"/performer"}])",
                                {{"Content-Type", "application/json-patch+json"}});
    REQUIRE_MESSAGE(patched.status == 200, patched.body);
    CHECK(contribution_tags(json_of(patched)) == 1);
    CHECK(names(at(json_of(patched), "performer", 0), "Patient/9000000009"));
    CHECK(f.contribute("DELETE", "/Observation/" + id).status == 204);
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/" + id).status == 410);
}

TEST_CASE("contribute: the GP cannot change a patient's contribution; the ICS's service may correct it") {
    contribute_fixture f;
    const std::string id = patient_fixture::created_id(f.contribute("POST", "/Observation", blood_pressure(tom)));
    auto read = f.call_as(gp_clinician(), "GET", "/Observation/" + id);
    CHECK(f.call_as(gp_clinician(), "PUT", "/Observation/" + id, read.body).status == 403);
    CHECK(f.call_as(gp_clinician(), "DELETE", "/Observation/" + id).status == 403);
    // The integration service (any_owner) corrects it: the server keeps its marks, whether the
    // correction carries them or not, since they say whose the item is.
    const std::string corrected = blood_pressure(tom, R"("id":")" + id + R"(","performer":[{"reference":"Patient/9000000009"}])");
    auto by_system = f.call("PUT", "/Observation/" + id, corrected);
    REQUIRE_MESSAGE(by_system.status == 200, by_system.body);
    CHECK(contribution_tags(json_of(by_system)) == 1);
    CHECK(json_of(by_system)["meta"]["source"] == contributor_source.c_str());
    auto patched = f.call("PATCH", "/Observation/" + id, R"([{"op":"remove","path":"/meta"}])",
                          {{"Content-Type", "application/json-patch+json"}});
    REQUIRE_MESSAGE(patched.status == 200, patched.body);
    CHECK(contribution_tags(json_of(patched)) == 1);
}

TEST_CASE("contribute: only the server sets the provenance marks; a provider's look-alikes are taken out") {
    contribute_fixture f;
    // Each a mark a professional's system could send to pass its writing off as the patient's: the
    // server's own tag, the code without a system or in another case, in meta.security, and
    // meta.source naming the patient endpoint.
    const std::vector<std::string> forged = {
        R"("meta":{"tag":[{"system":")" + provenance + R"(","code":"patient-contributed"}]})",
        R"("meta":{"tag":[{"code":"patient-contributed"}]})",
        R"("meta":{"tag":[{"system":"http://example.org/tags","code":"Patient-Contributed","display":"Contributed by the patient"}]})",
        R"("meta":{"security":[{"system":")" + provenance + R"(","code":"patient-contributed"}]})",
        R"("meta":{"source":")" + contributor_source + R"("})",
        R"("meta":{"source":"HTTPS://FHIR.CAREGATE.NHS.UK/patient-endpoint"})",
    };
    auto clean = [&](const http::response& r) {
        REQUIRE_MESSAGE((r.status == 201 || r.status == 200), r.body);
        const auto stored = json_of(r);
        const bool marked = stored.HasMember("meta") && (stored["meta"].HasMember("tag") || stored["meta"].HasMember("security") ||
                                                         stored["meta"].HasMember("source"));
        CHECK_FALSE(marked);
        CHECK(r.body.find("ontributed") == std::string::npos);
        CHECK(r.body.find("patient-endpoint") == std::string::npos);
    };
    for (const std::string& meta : forged) {
        CAPTURE(meta);
        clean(f.call_as(gp_clinician(), "POST", "/Observation", blood_pressure(tom, meta)));
        clean(f.call("POST", "/Observation", blood_pressure(tom, meta))); // the ICS's service on a new item too
        clean(f.call_as(gp_clinician(), "PUT", "/Observation/" + f.tom_observation,
                        blood_pressure(tom, R"("id":")" + f.tom_observation + R"(",)" + meta)));
        // In a transaction too.
        const std::string bundle =
            R"({"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"Observation"},"resource":)" +
            blood_pressure(tom, meta) + "}]}";
        auto answered = f.call_as(gp_clinician(), "POST", "", bundle);
        REQUIRE_MESSAGE(answered.status == 200, answered.body);
        const std::string location = text_at(json_of(answered), "entry", 0, "response", "location");
        const auto at = location.find("Observation/");
        clean(f.call_as(gp_clinician(), "GET", "/" + location.substr(at, location.find("/_history") - at)));
    }
    // A search for contributions finds none of them.
    auto found = json_of(f.call_as(gp_clinician(), "GET", "/Observation?_tag=" + provenance + "%7Cpatient-contributed&_total=accurate"));
    CHECK(found["total"].GetInt() == 0);
    // The provider's own tags and source stay.
    auto own = f.call_as(gp_clinician(), "POST", "/Observation",
                         blood_pressure(tom, R"("meta":{"source":"https://gp.example/system","tag":[{"system":"http://example.org/tags","code":"home"}]})"));
    REQUIRE(own.status == 201);
    CHECK(json_of(own)["meta"]["source"] == "https://gp.example/system");
    CHECK(json_of(own)["meta"]["tag"].Size() == 1);
}

TEST_CASE("contribute: a citizen's write must fit the policy's facets with every value, by system and code") {
    contribute_fixture f;
    const std::string category = R"({"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":")";
    auto categories = [&](const std::string& list) {
        std::string body = blood_pressure(tom);
        const auto at = body.find(R"("category":[)");
        const auto end = body.find("]}]", at) + 3;
        return body.replace(at, end - at, R"("category":[)" + list + "]");
    };
    // A home reading that is also a laboratory result; a vital sign of another code system; no category.
    CHECK(f.contribute("POST", "/Observation", categories(category + R"(vital-signs"}]},)" + category + R"(laboratory"}]})")).status == 403);
    CHECK(f.contribute("POST", "/Observation",
                       categories(R"({"coding":[{"system":"http://example.org/x","code":"vital-signs"}]})")).status == 403);
    CHECK(f.contribute("POST", "/Observation",
                       categories(category + R"(vital-signs"},{"system":"http://example.org/x","code":"vital-signs"}]})")).status == 403);
    CHECK(f.contribute("POST", "/Observation", categories(R"({"text":"vital-signs"})")).status == 403);
    // Two allowed kinds at once are fine.
    CHECK(f.contribute("POST", "/Observation", categories(category + R"(vital-signs"}]},)" + category + R"(activity"}]})")).status == 201);
    // A Consent whose scope is both treatment and patient-privacy is not a privacy choice alone.
    std::string both = objection(tom);
    both.replace(both.find(R"("code":"patient-privacy"})"), std::string(R"("code":"patient-privacy"})").size(),
                 R"("code":"patient-privacy"},{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"treatment"})");
    CHECK(f.contribute("POST", "/Consent", both).status == 403);
    std::string elsewhere = objection(tom);
    elsewhere.replace(elsewhere.find("http://terminology.hl7.org/CodeSystem/consentscope"),
                      std::string("http://terminology.hl7.org/CodeSystem/consentscope").size(), "http://example.org/x");
    CHECK(f.contribute("POST", "/Consent", elsewhere).status == 403);
    CHECK(f.contribute("POST", "/Consent", objection(tom)).status == 201);
}

TEST_CASE("contribute: a note on an item, and an about-me questionnaire answer, in the citizen's name") {
    contribute_fixture f;
    auto note = f.contribute("POST", "/Communication",
                             R"({"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/9000000009"},"about":[{"reference":"Observation/)" +
                                 f.tom_observation +
                                 R"("}],"recipient":[{"reference":"Organization/A81001"}],"payload":[{"contentString":"I took this reading after a run."}]})");
    REQUIRE_MESSAGE(note.status == 201, note.body);
    const auto sent = json_of(note);
    CHECK(names(sent["sender"], "Patient/9000000009"));
    CHECK(contribution_tags(sent) == 1);
    CHECK(f.call_as(gp_clinician(), "GET", "/Communication?sender=Patient/9000000009").body.find(sent["id"].GetString()) !=
          std::string::npos);

    auto about_me = f.contribute("POST", "/QuestionnaireResponse",
                                 R"({"resourceType":"QuestionnaireResponse","questionnaire":"https://fhir.caregate.nhs.uk/Questionnaire/about-me","status":"completed","subject":{"reference":"Patient/9000000009"},"item":[{"linkId":"what-matters","text":"What matters to me","answer":[{"valueString":"Staying at home with my cat"}]},{"linkId":"communication-needs","text":"How I like to be communicated with","answer":[{"valueString":"Large print; please speak slowly"}]}]})");
    REQUIRE_MESSAGE(about_me.status == 201, about_me.body);
    const auto answered = json_of(about_me);
    CHECK(names(answered["author"], "Patient/9000000009"));
    CHECK(names(answered["source"], "Patient/9000000009"));
    CHECK(f.call_as(gp_clinician(), "GET", std::string("/QuestionnaireResponse/") + answered["id"].GetString()).status == 200);
}

TEST_CASE("contribute: a citizen's transaction is marked entry by entry, as single writes are") {
    contribute_fixture f;
    const std::string bundle =
        R"({"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"Observation"},"resource":)" +
        blood_pressure(tom) + "}]}";
    auto answered = f.contribute("POST", "", bundle);
    REQUIRE_MESSAGE(answered.status == 200, answered.body);
    const std::string location = text_at(json_of(answered), "entry", 0, "response", "location");
    const auto start = location.find("Observation/") + std::string("Observation/").size();
    const std::string id = location.substr(start, location.find("/_history") - start);
    auto read = f.call_as(gp_clinician(), "GET", "/Observation/" + id);
    REQUIRE(read.status == 200);
    CHECK(contribution_tags(json_of(read)) == 1);
}

TEST_CASE("objection: a citizen objects to sharing, and withdraws it (by status, or by deleting it)") {
    contribute_fixture f;
    // An acute trust that treats Tom writes an item; his GP sees it through the shared record.
    f.call_as(acute_clinician(), "POST", "/Encounter",
              R"({"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"subject":{"reference":"Patient/9000000009"},"serviceProvider":{"reference":"Organization/RX1"}})");
    const std::string acute_item = patient_fixture::created_id(f.call_as(
        acute_clinician(), "POST", "/Condition",
        R"({"resourceType":"Condition","code":{"text":"fractured wrist"},"subject":{"reference":"Patient/9000000009"}})"));
    const std::string contribution = patient_fixture::created_id(f.contribute("POST", "/Observation", blood_pressure(tom)));
    CHECK(f.call_as(gp_clinician(), "GET", "/Condition/" + acute_item).status == 200);

    auto objected = f.contribute("POST", "/Consent", objection(tom));
    REQUIRE_MESSAGE(objected.status == 201, objected.body);
    const auto consent = json_of(objected);
    const std::string consent_id = consent["id"].GetString();
    CHECK(contribution_tags(consent) == 1);
    CHECK(names(at(consent, "performer", 0), "Patient/9000000009"));

    // Each organisation now sees only what it wrote itself.
    CHECK(f.call_as(gp_clinician(), "GET", "/Condition/" + acute_item).status == 404);
    CHECK(f.ids_of(f.call_as(gp_clinician(), "GET", "/Condition?patient=9000000009")).empty());
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/" + f.tom_observation).status == 200);
    CHECK(f.call_as(acute_clinician(), "GET", "/Condition/" + acute_item).status == 200);
    // The citizen's own contributions are not any organisation's, so they are not shared either.
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/" + contribution).status == 404);
    // The citizen still sees their whole record.
    CHECK(f.contribute("GET", "/Condition/" + acute_item).status == 200);

    // Withdrawn by an update to status inactive: sharing resumes at once.
    auto withdrawn = f.contribute("PUT", "/Consent/" + consent_id, objection(tom, "inactive", consent_id));
    REQUIRE_MESSAGE(withdrawn.status == 200, withdrawn.body);
    CHECK(f.call_as(gp_clinician(), "GET", "/Condition/" + acute_item).status == 200);
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/" + contribution).status == 200);

    // Objecting again, then withdrawing by deleting it.
    auto renewed = f.contribute("PUT", "/Consent/" + consent_id, objection(tom, "active", consent_id));
    REQUIRE(renewed.status == 200);
    CHECK(f.call_as(gp_clinician(), "GET", "/Condition/" + acute_item).status == 404);
    CHECK(f.contribute("DELETE", "/Consent/" + consent_id).status == 204);
    CHECK(f.call_as(gp_clinician(), "GET", "/Condition/" + acute_item).status == 200);
}

TEST_CASE("objection: a citizen records only their own privacy choices") {
    contribute_fixture f;
    // For another citizen: 422, as any write about them.
    CHECK(f.contribute("POST", "/Consent", objection(bunmi)).status == 422);
    // Consents other than privacy ones (treatment, research) are the professional's to record.
    std::string treatment = objection(tom);
    treatment.replace(treatment.find("patient-privacy"), std::string("patient-privacy").size(), "treatment");
    CHECK(f.contribute("POST", "/Consent", treatment).status == 403);
    // An objection a GP recorded is the GP's: the citizen withdraws theirs, not the GP's record of one.
    const std::string recorded = patient_fixture::created_id(f.call_as(gp_clinician(), "POST", "/Consent", objection(tom)));
    CHECK(f.contribute("DELETE", "/Consent/" + recorded).status == 403);
}
