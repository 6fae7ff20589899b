// The citizen's access log on the patient-facing endpoint: a citizen verified to
// P9 reads, as AuditEvents, who accessed their record, from which organisation (ODS code and name),
// when and why, break-glass accesses flagged with their reason; never another citizen's records
// (another NHS number finds nothing, a read by id answers 404), and never the free-text `detail`.
#include "patient_fixture.hpp"

#include <set>

using namespace caregate;
using namespace caregate::testing;

namespace {

std::string string_at(const rapidjson::Value& object, const char* key) {
    return object.IsObject() && object.HasMember(key) && object[key].IsString() ? object[key].GetString() : "";
}

/// One AuditEvent as a test reads it.
struct event {
    std::string id, action, subtype, outcome, recorded;
    std::string user, role, ods, ods_system, organisation_name, organisation_reference;
    std::string purpose, purpose_display, reason;
    std::vector<std::string> entities;
    bool has_detail = false;
};

event event_of(const rapidjson::Value& e) {
    event out;
    out.id = string_at(e, "id");
    out.action = string_at(e, "action");
    out.subtype = string_at(at(e, "subtype", 0), "code");
    out.outcome = string_at(e, "outcome");
    out.recorded = string_at(e, "recorded");
    const auto& person = at(e, "agent", 0);
    out.user = string_at(person["who"]["identifier"], "value");
    if (person.HasMember("type"))
        out.role = string_at(at(person, "type", "coding", 0), "code");
    const auto& organisation = at(e, "agent", 1);
    out.ods = string_at(organisation["who"]["identifier"], "value");
    out.ods_system = string_at(organisation["who"]["identifier"], "system");
    out.organisation_name = string_at(organisation["who"], "display");
    out.organisation_reference = string_at(organisation["who"], "reference");
    const auto& purpose = at(e, "purposeOfEvent", 0);
    out.purpose = string_at(at(purpose, "coding", 0), "code");
    out.purpose_display = string_at(at(purpose, "coding", 0), "display");
    out.reason = string_at(purpose, "text");
    if (e.HasMember("entity"))
        for (const auto& entity : e["entity"].GetArray())
            out.entities.push_back(entity.HasMember("what") ? string_at(entity["what"], "reference")
                                                            : "type:" + string_at(entity["type"], "code"));
    for (const auto& extension : e["extension"].GetArray())
        out.has_detail = out.has_detail || string_at(extension, "url").ends_with("/audit-detail");
    return out;
}

/// The shared patient fixture with Bunmi registered at Tom's practice too, so that one GP's accesses
/// leave records in both citizens' logs; its patient endpoint made as `caregate serve` makes it (the
/// CapabilityStatement's lists from the default policy).
struct audit_fixture : patient_fixture {
    audit_fixture() {
        REQUIRE(call("PUT", std::string("/Patient/") + bunmi,
                     patient_json(bunmi, R"("id":"9000000017","generalPractitioner":[{"reference":"Organization/A81001"}])"))
                    .status == 200);
        interactions::rest_config config;
        config.base_url = patient_base_url;
        config.patient_endpoint = true;
        config.patient_readable_types = policy.patient_types(access::action::read);
        config.patient_creatable_types = policy.patient_types(access::action::create);
        config.patient_updatable_types = policy.patient_types(access::action::update);
        config.patient_deletable_types = policy.patient_types(access::action::delete_);
        patient_app = std::make_unique<rest::application>(*store, *citizen_guard, config);
    }

    http::response get(const std::string& token, const std::string& target) {
        return as_citizen(token, "GET", target);
    }

    /// The events of a searchset Bundle.
    static std::vector<event> events_of(const http::response& bundle) {
        REQUIRE_MESSAGE(bundle.status == 200, bundle.body);
        auto doc = json_of(bundle);
        CHECK(string_at(doc, "type") == "searchset");
        std::vector<event> out;
        if (doc.HasMember("entry"))
            for (const auto& entry : doc["entry"].GetArray())
                out.push_back(event_of(entry["resource"]));
        return out;
    }

    std::string organisation_name(const std::string& ods) const {
        const access::organisation* org = organisations.find(ods);
        REQUIRE(org != nullptr);
        return org->name;
    }
};

const event* find_event(const std::vector<event>& events, const std::string& user, const std::string& subtype) {
    for (const auto& e : events)
        if (e.user == user && e.subtype == subtype)
            return &e;
    return nullptr;
}

} // namespace

TEST_CASE("citizen's access log: the GP's read, with who, role, organisation by ODS code and name, when and why") {
    audit_fixture f;
    REQUIRE(f.call_as(gp_clinician(), "GET", std::string("/Patient/") + tom).status == 200);
    f.flush(); // a read's record is committed by the writer's next group commit

    const auto events = f.events_of(f.get(citizen_token(tom), std::string("/AuditEvent?patient=") + tom));
    const event* gp = find_event(events, "gp-doctor-1", "read");
    REQUIRE(gp != nullptr);
    CHECK(gp->role == "R8000");
    CHECK(gp->ods == "A81001");
    CHECK(gp->ods_system == "https://fhir.nhs.uk/Id/ods-organization-code");
    CHECK(gp->organisation_name == f.organisation_name("A81001"));
    CHECK_FALSE(gp->organisation_name.empty());
    CHECK(gp->action == "R");
    CHECK(gp->outcome == "0");
    CHECK(gp->purpose == "TREAT");
    CHECK(gp->purpose_display == "treatment");
    CHECK(gp->reason.empty());
    CHECK_FALSE(gp->recorded.empty());
    CHECK(std::find(gp->entities.begin(), gp->entities.end(), std::string("Patient/") + tom) != gp->entities.end());

    // GET /AuditEvent and patient=Patient/{nhs} mean the same.
    auto ids = [](const std::vector<event>& list) {
        std::set<std::string> out;
        for (const auto& e : list)
            out.insert(e.id);
        return out;
    };
    const auto bare = f.events_of(f.get(citizen_token(tom), "/AuditEvent"));
    const auto typed = f.events_of(f.get(citizen_token(tom), std::string("/AuditEvent?patient=Patient/") + tom));
    CHECK(ids(bare).contains(gp->id));
    CHECK(ids(typed).contains(gp->id));
    // A read by id of one of their own records.
    auto one = f.get(citizen_token(tom), "/AuditEvent/" + gp->id);
    REQUIRE(one.status == 200);
    CHECK(event_of(json_of(one)).user == "gp-doctor-1");
}

TEST_CASE("citizen's access log: a break-glass access is flagged ETREAT with its stated reason, from the trust") {
    audit_fixture f;
    identity emergency = acute_clinician();
    emergency.purpose = "ETREAT";
    emergency.reason = "unconscious in A&E";
    REQUIRE(f.call_as(emergency, "GET", std::string("/Patient/") + tom).status == 200);
    f.flush();

    const auto events = f.events_of(f.get(citizen_token(tom), "/AuditEvent"));
    for (const char* subtype : {"break-glass", "read"}) { // the grant, and the read it opened
        CAPTURE(subtype);
        const event* glass = find_event(events, "acute-doctor-1", subtype);
        REQUIRE(glass != nullptr);
        CHECK(glass->purpose == "ETREAT");
        CHECK(glass->purpose_display == "emergency treatment (break-glass)");
        CHECK(glass->reason == "unconscious in A&E");
        CHECK(glass->ods == "RX1");
        CHECK(glass->organisation_name == f.organisation_name("RX1"));
        CHECK(glass->role == "R8000");
        CHECK(glass->outcome == "0");
    }
}

TEST_CASE("citizen's access log: never another citizen's records; patient= another NHS number finds nothing") {
    audit_fixture f;
    REQUIRE(f.call_as(gp_clinician(), "GET", std::string("/Patient/") + bunmi).status == 200);
    REQUIRE(f.call_as(gp_clinician(), "GET", std::string("/Patient/") + tom).status == 200);
    f.flush();
    const std::string token = citizen_token(tom);

    for (const std::string& other : {std::string(bunmi), std::string("Patient/") + bunmi, std::string("9000000025")}) {
        CAPTURE(other);
        auto found = f.get(token, "/AuditEvent?patient=" + other);
        CHECK(f.events_of(found).empty());
        const bool asked_for_bunmi = other.find(bunmi) != std::string::npos; // then the self link echoes it
        CHECK((asked_for_bunmi || found.body.find(bunmi) == std::string::npos));
    }
    // Whatever else they ask (agent, date), only records naming them come back.
    for (const char* query : {"/AuditEvent", "/AuditEvent?agent=gp-doctor-1", "/AuditEvent?agent=A81001",
                              "/AuditEvent?date=ge2000-01-01"}) {
        CAPTURE(query);
        auto found = f.get(token, query);
        auto events = f.events_of(found);
        CHECK_FALSE(events.empty());
        for (const auto& e : events)
            CHECK(std::find(e.entities.begin(), e.entities.end(), std::string("Patient/") + tom) != e.entities.end());
        CHECK(found.body.find(bunmi) == std::string::npos);
    }

    // A read by id of a record of Bunmi's is 404, exactly as a record that does not exist.
    caregate::storage::store::audit_query theirs;
    theirs.nhs_number = bunmi;
    auto bunmi_trail = f.store->audit(theirs);
    REQUIRE(bunmi_trail.ok());
    REQUIRE_FALSE(bunmi_trail->records.empty());
    auto hidden = f.get(token, "/AuditEvent/" + std::to_string(bunmi_trail->records.front().sequence));
    auto absent = f.get(token, "/AuditEvent/99999999");
    CHECK(hidden.status == 404);
    CHECK(absent.status == 404);
    CHECK(at(json_of(hidden), "issue", 0, "diagnostics") == at(json_of(absent), "issue", 0, "diagnostics"));
    // A record naming no citizen (an access that touched nobody's record) is not theirs either.
    caregate::storage::store::audit_query all;
    all.count = 1000;
    auto everything = f.store->audit(all);
    REQUIRE(everything.ok());
    for (const auto& record : everything->records)
        if (record.nhs_number.empty()) {
            CHECK(f.get(token, "/AuditEvent/" + std::to_string(record.sequence)).status == 404);
            break;
        }

    // Asking for Bunmi's trail leaves nothing in Bunmi's log that names Tom.
    f.flush();
    auto after = f.store->audit(theirs);
    REQUIRE(after.ok());
    for (const auto& record : after->records)
        CHECK(record.organisation != std::string("patient:") + tom);
}

TEST_CASE("citizen's access log: the free-text detail is never shown to citizens; information governance sees it") {
    audit_fixture f;
    // A search over two citizens leaves one record per citizen, each with the whole query as detail:
    // Tom's record would name Bunmi.
    REQUIRE(f.call_as(gp_clinician(), "POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})")).status == 201);
    REQUIRE(f.call_as(gp_clinician(), "POST", "/Observation", observation_json(R"({"reference":"Patient/9000000017"})")).status == 201);
    REQUIRE(f.call_as(gp_clinician(), "GET", std::string("/Observation?subject=Patient/") + tom + ",Patient/" + bunmi).status == 200);
    f.flush();

    auto mine = f.get(citizen_token(tom), "/AuditEvent?_count=100");
    const auto events = f.events_of(mine);
    REQUIRE(find_event(events, "gp-doctor-1", "search") != nullptr);
    for (const auto& e : events)
        CHECK_FALSE(e.has_detail);
    CHECK(mine.body.find(bunmi) == std::string::npos);

    // Information governance, who may read every citizen's trail, is shown the detail.
    auto review = f.call_as(ig_officer(), "GET", std::string("/AuditEvent?patient=") + tom + "&_count=100");
    const auto reviewed = f.events_of(review);
    const event* search = find_event(reviewed, "gp-doctor-1", "search");
    REQUIRE(search != nullptr);
    CHECK(search->has_detail);
    CHECK(review.body.find(bunmi) != std::string::npos);
}

TEST_CASE("citizen's access log: their own reads appear as the citizen's, with no Organization to point at") {
    audit_fixture f;
    const std::string token = citizen_token(tom);
    REQUIRE(f.get(token, std::string("/Patient/") + tom).status == 200);
    f.flush();
    const auto events = f.events_of(f.get(token, "/AuditEvent"));
    const event* own = find_event(events, "nhs-login-0009", "read");
    REQUIRE(own != nullptr);
    CHECK(own->role == "citizen");
    CHECK(own->ods == std::string("patient:") + tom);
    CHECK(own->organisation_name == "the citizen (patient-facing endpoint)");
    CHECK(own->organisation_reference.empty()); // "Organization/patient:..." would not be a valid reference
    CHECK(own->purpose == "PATRQT");
}

TEST_CASE("citizen's access log: paging with _count and next links on the patient endpoint; date filters") {
    audit_fixture f;
    for (int i = 0; i < 3; ++i)
        REQUIRE(f.call_as(gp_clinician(), "GET", std::string("/Patient/") + tom).status == 200);
    f.flush();
    const std::string token = citizen_token(tom);
    auto first = f.get(token, "/AuditEvent?_count=1");
    REQUIRE(first.status == 200);
    auto doc = json_of(first);
    CHECK(doc["entry"].Size() == 1);
    std::string next;
    for (const auto& link : doc["link"].GetArray()) {
        if (string_at(link, "relation") == "self")
            CHECK(string_at(link, "url").starts_with(std::string(patient_base_url) + "/AuditEvent?patient=" + tom));
        if (string_at(link, "relation") == "next")
            next = string_at(link, "url");
    }
    REQUIRE(next.starts_with(patient_base_url));
    auto second = f.get(token, next.substr(std::string(patient_base_url).size()));
    auto page_two = f.events_of(second);
    REQUIRE(page_two.size() == 1);
    CHECK(page_two.front().id != string_at(at(doc, "entry", 0, "resource"), "id"));
    CHECK(f.events_of(f.get(token, "/AuditEvent?date=lt2000-01-01")).empty());
    CHECK_FALSE(f.events_of(f.get(token, "/AuditEvent?date=ge2000-01-01")).empty());
}

TEST_CASE("citizen's access log: P9 with a patient scope for AuditEvent only; P5 and other scopes get 403") {
    audit_fixture f;
    REQUIRE(f.call_as(gp_clinician(), "GET", std::string("/Patient/") + tom).status == 200);
    f.flush();
    CHECK(f.get(citizen_token(tom, "P5"), "/AuditEvent").status == 403);
    CHECK(f.get(citizen_token(tom, "P5"), std::string("/AuditEvent?patient=") + tom).status == 403);
    CHECK(f.get(citizen_token(tom, "P5"), "/AuditEvent/1").status == 403);
    CHECK(f.get(citizen_token(tom, "P0"), "/AuditEvent").status == 403);
    CHECK(f.get(citizen_token(tom, "P9", {"patient/Observation.rs"}), "/AuditEvent").status == 403);
    CHECK(f.get(citizen_token(tom, "P9", {"patient/AuditEvent.rs"}), "/AuditEvent").status == 200);
    CHECK(f.get(citizen_token(tom, "P9", {"patient/*.read"}), "/AuditEvent").status == 200);
    CHECK(f.get(citizen_token(tom, "P9", {"patient/*.rs"}), "/AuditEvent").status == 200);
    // Still read-only, as for everyone.
    CHECK(f.get(citizen_token(tom), "/AuditEvent/1/_history").status != 200);
}

TEST_CASE("citizen's access log: the patient endpoint's CapabilityStatement lists AuditEvent read and search") {
    audit_fixture f;
    const auto readable = f.policy.patient_types(access::action::read);
    CHECK(std::find(readable.begin(), readable.end(), "AuditEvent") != readable.end());
    auto metadata = f.get(citizen_token(tom), "/metadata");
    REQUIRE(metadata.status == 200);
    auto doc = json_of(metadata);
    bool listed = false;
    for (const auto& resource : at(doc, "rest", 0, "resource").GetArray()) {
        if (string_at(resource, "type") != "AuditEvent")
            continue;
        listed = true;
        std::set<std::string> codes;
        for (const auto& i : resource["interaction"].GetArray())
            codes.insert(string_at(i, "code"));
        CHECK(codes == std::set<std::string>{"read", "search-type"});
    }
    CHECK(listed);
    // What citizens contribute, they may also correct and remove (their own contributions).
    for (const auto& resource : at(doc, "rest", 0, "resource").GetArray()) {
        if (string_at(resource, "type") != "Observation")
            continue;
        std::set<std::string> codes;
        for (const auto& i : resource["interaction"].GetArray())
            codes.insert(string_at(i, "code"));
        CHECK(codes == std::set<std::string>{"read", "search-type", "create", "update", "patch", "delete"});
    }
}
