// Tests for the audit chain's anchors (storage/src/audit_anchor.cpp, audit_anchor_verify.cpp): the
// signed line, the anchors file, the checkpointing thread, and verification catching what the hash
// chain alone cannot (README, "The audit trail"): a chain rewritten with every hash recomputed, its
// newest records removed, an older copy of the database restored; and anchors that are malformed,
// badly signed or made with another key. Keys are real Ed25519 keys made with OpenSSL per test.
#include "storage/audit_anchor.hpp"

#include "store_fixture.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <chrono>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

/// An Ed25519 key pair written as PEM files (private.pem, public.pem) in its own directory.
struct key_files {
    temp_directory directory;
    std::string private_pem = (directory.path() / "private.pem").string();
    std::string public_pem = (directory.path() / "public.pem").string();

    explicit key_files(const char* algorithm = "ED25519") {
        EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, algorithm, std::string_view(algorithm) == "EC" ? "P-256" : nullptr);
        REQUIRE(key);
        BIO* out = BIO_new_file(private_pem.c_str(), "w");
        REQUIRE(PEM_write_bio_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
        BIO_free(out);
        out = BIO_new_file(public_pem.c_str(), "w");
        REQUIRE(PEM_write_bio_PUBKEY(out, key) == 1);
        BIO_free(out);
        EVP_PKEY_free(key);
    }
    audit_key signing() const {
        auto key = audit_key::load_private(private_pem);
        REQUIRE(key.ok());
        return *key;
    }
    audit_key verifying() const {
        auto key = audit_key::load_public(public_pem);
        REQUIRE(key.ok());
        return *key;
    }
};

audit_record record_of(int n) {
    audit_record record;
    record.time = 1'000'000 * n;
    record.request_id = "request-" + std::to_string(n);
    record.user = "user-" + std::to_string(n);
    record.role = "R8000";
    record.organisation = "A81001";
    record.purpose = "TREAT";
    record.nhs_number = "9000000009";
    record.resource_type = "Patient";
    record.resource_ids = "9000000009";
    record.action = "read";
    record.outcome = "success";
    return record;
}

/// Appends `n` records (record_of(first), record_of(first + 1), ...) and waits for their commit.
void fill(store& db, int n, int first = 1) {
    std::vector<audit_record> records;
    for (int i = 0; i < n; ++i)
        records.push_back(record_of(first + i));
    std::promise<fhir::status> appended;
    db.append_audit(std::move(records), [&](fhir::status done) { appended.set_value(std::move(done)); });
    REQUIRE(appended.get_future().get().ok());
}

timestamp now() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

/// Anchors the store's tip now into the file at `path` (as the checkpointing thread does).
audit_anchor anchor_tip(store& db, const audit_key& key, const std::string& path) {
    auto tip = db.audit_tip();
    REQUIRE(tip.ok());
    auto anchor = make_anchor(key, *tip, now());
    REQUIRE(anchor.ok());
    auto file = anchor_file::open(path);
    REQUIRE(file.ok());
    REQUIRE(file->append(*anchor).ok());
    return *anchor;
}

void append_line(const std::string& path, const std::string& line) {
    std::ofstream out(path, std::ios::app | std::ios::binary);
    out << line << '\n';
}

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

anchors_verification checked(store& db, const audit_key& key, const std::string& path) {
    auto verdict = verify_anchors(db, key, path);
    REQUIRE(verdict.ok());
    return *verdict;
}

/// Rewrites record `changed` as someone holding the database file can: the triggers dropped, a
/// field changed, and that record's hash and every later record's previous_hash and hash recomputed
/// with store::audit_hash, so that the chain verifies again.
void rewrite_chain(store_fixture& db, std::int64_t changed) {
    store::audit_query query;
    query.count = 100000;
    auto page = db->audit(query);
    REQUIRE(page.ok());
    std::vector<audit_record> records(page->records.rbegin(), page->records.rend()); // oldest first
    db.close();
    std::string sql = db.drop_trigger("audit_log_never_changes", "audit_log");
    std::string previous = std::string(64, '0');
    for (auto& record : records) {
        if (record.sequence == changed)
            record.user = "someone-else";
        record.previous_hash = previous;
        record.hash = store::audit_hash(record);
        previous = record.hash;
        if (record.sequence >= changed)
            sql += "UPDATE audit_log SET \"user\" = '" + record.user + "', previous_hash = '" + record.previous_hash +
                   "', hash = '" + record.hash + "' WHERE sequence = " + std::to_string(record.sequence) + "; ";
    }
    REQUIRE(db.execute(sql) == SQLITE_OK);
    db.reopen();
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

} // namespace

TEST_CASE("audit anchor: a line reads back as written, and its signature covers every field") {
    store_fixture db;
    key_files keys;
    fill(*db, 3);
    auto tip = db->audit_tip();
    REQUIRE(tip.ok());
    CHECK(tip->sequence == 3);
    auto third = db->audit_record_at(3);
    REQUIRE(third.ok());
    CHECK(tip->hash == third->hash);

    auto anchor = make_anchor(keys.signing(), *tip, 1'764'000'000'123'456);
    REQUIRE(anchor.ok());
    const std::string line = anchor->line();
    CHECK(line == "caregate-audit-anchor/1 sequence=3 hash=" + third->hash +
                      " time=2025-11-24T16:00:00.123456Z key=" + keys.verifying().id() + " signature=" + anchor->signature);
    auto parsed = parse_anchor(line);
    REQUIRE(parsed.ok());
    CHECK(parsed->line() == line);
    CHECK(keys.verifying().verifies(parsed->signed_text(), parsed->signature));
    CHECK(keys.signing().id() == keys.verifying().id());

    // Any signed field changed: the signature no longer holds.
    for (auto change : std::vector<std::function<void(audit_anchor&)>>{
             [](audit_anchor& a) { ++a.sequence; },
             [](audit_anchor& a) { a.hash[0] = a.hash[0] == '0' ? '1' : '0'; },
             [](audit_anchor& a) { a.time += 1; },
         }) {
        audit_anchor altered = *parsed;
        change(altered);
        CHECK_FALSE(keys.verifying().verifies(altered.signed_text(), altered.signature));
    }
    key_files other;
    CHECK(other.verifying().id() != keys.verifying().id());
    CHECK_FALSE(other.verifying().verifies(parsed->signed_text(), parsed->signature));
}

TEST_CASE("audit anchor: parse_anchor takes exactly the line's format and nothing else") {
    const std::string hash(64, 'a'), key(16, 'b'), signature(128, 'c');
    const std::string good = "caregate-audit-anchor/1 sequence=12 hash=" + hash +
                             " time=2026-12-06T06:00:00.000000Z key=" + key + " signature=" + signature;
    REQUIRE(parse_anchor(good).ok());
    for (const std::string& bad : {
             std::string(),
             "caregate-audit-anchor/2" + good.substr(23),
             good + " extra=1",
             good.substr(0, good.size() - 1),                                  // signature short
             "caregate-audit-anchor/1  sequence=12" + good.substr(35),           // two spaces
             "caregate-audit-anchor/1 sequence=0" + good.substr(35),             // no record 0
             "caregate-audit-anchor/1 sequence=012" + good.substr(35),           // not canonical
             "caregate-audit-anchor/1 sequence=-1" + good.substr(35),
             "caregate-audit-anchor/1 hash=" + hash + " sequence=12" + good.substr(35 + 6 + 64),
         }) {
        CAPTURE(bad);
        auto parsed = parse_anchor(bad);
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.failure().kind == fhir::category::malformed);
    }
    auto with = [&](std::string from, std::string to) {
        std::string line = good;
        line.replace(line.find(from), from.size(), to);
        return line;
    };
    CHECK_FALSE(parse_anchor(with(hash, std::string(64, 'A'))).ok());                       // upper case
    CHECK_FALSE(parse_anchor(with(hash, std::string(63, 'a'))).ok());
    CHECK_FALSE(parse_anchor(with("2026-12-06T06:00:00.000000Z", "2026-12-06T25:00:00.000000Z")).ok());
    CHECK_FALSE(parse_anchor(with("2026-12-06T06:00:00.000000Z", "2026-02-30T06:00:00.000000Z")).ok());
    CHECK_FALSE(parse_anchor(with("2026-12-06T06:00:00.000000Z", "2026-12-06 06:00:00.000000Z")).ok());
    CHECK_FALSE(parse_anchor(with(key, std::string(15, 'b'))).ok());
    CHECK_FALSE(parse_anchor(with(signature, std::string(127, 'c') + "g")).ok());
}

TEST_CASE("audit anchor: keys are Ed25519 PEM files; anything else is refused, and a public key cannot sign") {
    key_files ed25519;
    key_files ec("EC");
    CHECK(audit_key::load_private(ed25519.private_pem).ok());
    CHECK(audit_key::load_public(ed25519.public_pem).ok());
    CHECK_FALSE(audit_key::load_private(ed25519.public_pem).ok());
    CHECK_FALSE(audit_key::load_public(ed25519.private_pem).ok());
    auto not_ed25519 = audit_key::load_private(ec.private_pem);
    REQUIRE_FALSE(not_ed25519.ok());
    CHECK(mentions(not_ed25519.failure().issues.front().diagnostics, "not an Ed25519 key"));
    CHECK_FALSE(audit_key::load_private((ed25519.directory.path() / "absent.pem").string()).ok());
    CHECK_FALSE(ed25519.verifying().sign("anything").ok());
}

TEST_CASE("audit anchor: a chain rewritten with every hash recomputed passes verify_audit, not the anchors") {
    store_fixture db;
    key_files keys;
    const std::string anchors = (db.directory.path() / "anchors").string();
    fill(*db, 2);
    anchor_tip(*db, keys.signing(), anchors); // line 1: record 2
    fill(*db, 4);
    anchor_tip(*db, keys.signing(), anchors); // line 2: record 6
    REQUIRE(checked(*db, keys.verifying(), anchors).problems.empty());

    rewrite_chain(db, 3);

    // The gap the anchors close: the chain alone verifies after the rewrite.
    auto chain = db->verify_audit();
    REQUIRE(chain.ok());
    CHECK(chain->records == 6);
    CHECK_FALSE(chain->first_broken);

    const auto verdict = checked(*db, keys.verifying(), anchors);
    CHECK(verdict.lines == 2);
    CHECK(verdict.anchors_verified == 1); // record 2, before the rewrite, still holds
    REQUIRE(verdict.problems.size() == 1);
    CHECK(verdict.problems[0].line == 2);
    CHECK(verdict.problems[0].sequence == 6);
    CHECK(mentions(verdict.problems[0].problem, "the chain was rewritten at or before record 6 and after record 2"));
}

TEST_CASE("audit anchor: records removed from the end of the log are reported, with how many") {
    store_fixture db;
    key_files keys;
    const std::string anchors = (db.directory.path() / "anchors").string();
    fill(*db, 6);
    anchor_tip(*db, keys.signing(), anchors); // record 6
    fill(*db, 2);                             // 7 and 8, not anchored yet
    db.close();
    REQUIRE(db.execute(db.drop_trigger("audit_log_never_goes", "audit_log") + "DELETE FROM audit_log WHERE sequence >= 5") == SQLITE_OK);
    db.reopen();

    auto chain = db->verify_audit();
    REQUIRE(chain.ok());
    CHECK(chain->records == 4);
    CHECK_FALSE(chain->first_broken); // the chain alone cannot tell

    const auto verdict = checked(*db, keys.verifying(), anchors);
    CHECK(verdict.tip.sequence == 4);
    REQUIRE(verdict.problems.size() == 1);
    CHECK(verdict.problems[0].line == 1);
    CHECK(mentions(verdict.problems[0].problem, "the audit log ends at record 4: 2 records are missing, 5 to 6 at least"));
}

TEST_CASE("audit anchor: an older copy of the database restored is reported, written to since or not" * caregate::testing::sqlite_only()) {
    store_fixture db;
    key_files keys;
    const std::string anchors = (db.directory.path() / "anchors").string();
    const std::string copy = (db.directory.path() / "backup.db").string();
    fill(*db, 4);
    anchor_tip(*db, keys.signing(), anchors); // line 1: record 4
    REQUIRE(backup_database(db.options.path, copy).ok());
    fill(*db, 3);
    anchor_tip(*db, keys.signing(), anchors); // line 2: record 7, not in the copy
    db.close();
    for (const char* suffix : {"", "-wal", "-shm"})
        std::filesystem::remove(db.options.path + suffix);
    std::filesystem::copy_file(copy, db.options.path);
    db.reopen();
    REQUIRE(db->verify_audit().ok());
    CHECK_FALSE(db->verify_audit()->first_broken);

    SUBCASE("as restored") {
        const auto verdict = checked(*db, keys.verifying(), anchors);
        CHECK(verdict.anchors_verified == 1);
        REQUIRE(verdict.problems.size() == 1);
        CHECK(verdict.problems[0].line == 2);
        CHECK(mentions(verdict.problems[0].problem, "3 records are missing, 5 to 7 at least"));
        CHECK(mentions(verdict.problems[0].problem, "an older copy of the database was restored"));
    }
    SUBCASE("and written to since: records 5 to 9 exist, but not the anchored 7") {
        fill(*db, 5, 100); // other accesses than those the lost records 5 to 7 held
        CHECK_FALSE(db->verify_audit()->first_broken);
        const auto verdict = checked(*db, keys.verifying(), anchors);
        REQUIRE(verdict.problems.size() == 1);
        CHECK(verdict.problems[0].line == 2);
        CHECK(mentions(verdict.problems[0].problem, "record 7 is not the one anchored"));
        CHECK(mentions(verdict.problems[0].problem, "after record 4"));
    }
}

TEST_CASE("audit anchor: a malformed line, a bad signature or another key's anchor is reported, never skipped") {
    store_fixture db;
    key_files keys;
    key_files other;
    const std::string anchors = (db.directory.path() / "anchors").string();
    fill(*db, 3);
    const audit_anchor good = anchor_tip(*db, keys.signing(), anchors); // line 1

    audit_anchor altered = good; // line 2: a signature changed in one digit
    altered.signature[10] = altered.signature[10] == '0' ? '1' : '0';
    append_line(anchors, altered.line());

    auto theirs = make_anchor(other.signing(), {3, good.hash}, now()); // line 3: another key's anchor
    REQUIRE(theirs.ok());
    append_line(anchors, theirs->line());

    audit_anchor forged = *theirs; // line 4: another key's signature passed off as ours
    forged.key_id = good.key_id;
    append_line(anchors, forged.line());

    audit_anchor moved = good; // line 5: our signature over record 3, claimed for record 2
    moved.sequence = 2;
    append_line(anchors, moved.line());

    append_line(anchors, "not an anchor at all"); // line 6
    append_line(anchors, "");                     // line 7
    fill(*db, 1);
    anchor_tip(*db, keys.signing(), anchors); // line 8: sound

    const auto verdict = checked(*db, keys.verifying(), anchors);
    CHECK(verdict.lines == 8);
    CHECK(verdict.anchors_verified == 2);
    CHECK(verdict.newest_anchored == 4);
    REQUIRE(verdict.problems.size() == 6);
    CHECK(verdict.problems[0].line == 2);
    CHECK(mentions(verdict.problems[0].problem, "its signature does not verify"));
    CHECK(verdict.problems[1].line == 3);
    CHECK(mentions(verdict.problems[1].problem, "it names another key (" + other.verifying().id()));
    CHECK(verdict.problems[2].line == 4);
    CHECK(mentions(verdict.problems[2].problem, "its signature does not verify"));
    CHECK(verdict.problems[3].line == 5);
    CHECK(mentions(verdict.problems[3].problem, "its signature does not verify"));
    CHECK(verdict.problems[4].line == 6);
    CHECK(mentions(verdict.problems[4].problem, "not an anchor"));
    CHECK(verdict.problems[5].line == 7);

    SUBCASE("checked with the other key, our anchors are the other key's") {
        const auto theirs_verdict = checked(*db, other.verifying(), anchors);
        CHECK(theirs_verdict.anchors_verified == 1); // line 3
    }
}

TEST_CASE("audit anchor: a torn last line is ended when the file is opened, and reported by verification") {
    store_fixture db;
    key_files keys;
    const std::string anchors = (db.directory.path() / "anchors").string();
    fill(*db, 2);
    const audit_anchor first = anchor_tip(*db, keys.signing(), anchors);
    {
        std::ofstream out(anchors, std::ios::app | std::ios::binary);
        out << first.line().substr(0, 40); // a crash in the middle of a line
    }
    CHECK(checked(*db, keys.verifying(), anchors).problems.size() == 1);
    fill(*db, 1);
    anchor_tip(*db, keys.signing(), anchors); // opens the file: ends the torn line first
    const auto lines = lines_of(anchors);
    REQUIRE(lines.size() == 3);
    CHECK(parse_anchor(lines[2]).ok());
    const auto verdict = checked(*db, keys.verifying(), anchors);
    CHECK(verdict.anchors_verified == 2);
    REQUIRE(verdict.problems.size() == 1);
    CHECK(verdict.problems[0].line == 2);
}

TEST_CASE("audit anchorer: anchors the tip on the interval only when it moved, and a last time when stopped") {
    store_fixture db;
    key_files keys;
    const std::string anchors = (db.directory.path() / "anchors").string();
    auto wait_for_lines = [&](std::size_t n) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (lines_of(anchors).size() < n && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return lines_of(anchors).size();
    };
    std::vector<std::string> reported;
    std::mutex reported_mutex;
    audit_anchoring settings;
    settings.anchors_path = anchors;
    settings.interval = std::chrono::milliseconds(50);
    settings.report = [&](const std::string& line) {
        std::lock_guard lock(reported_mutex);
        reported.push_back(line);
    };

    SUBCASE("on the interval") {
        auto anchorer = audit_anchorer::start(*db, keys.signing(), settings);
        REQUIRE(anchorer.ok());
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        CHECK(lines_of(anchors).empty()); // the empty chain is never anchored
        fill(*db, 3);
        REQUIRE(wait_for_lines(1) == 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(300)); // six intervals, the tip still
        CHECK(lines_of(anchors).size() == 1);
        fill(*db, 2);
        REQUIRE(wait_for_lines(2) == 2);
        REQUIRE((*anchorer)->stop().ok()); // the tip has not moved: no third line
        const auto lines = lines_of(anchors);
        CHECK(lines.size() == 2);
        CHECK(parse_anchor(lines[0])->sequence == 3);
        CHECK(parse_anchor(lines[1])->sequence == 5);
        std::lock_guard lock(reported_mutex);
        REQUIRE(reported.size() == 2);
        CHECK(reported[1] == "audit anchor " + lines[1]);
    }
    SUBCASE("when stopped (a clean shutdown), whatever the interval") {
        settings.interval = std::chrono::hours(1);
        auto anchorer = audit_anchorer::start(*db, keys.signing(), settings);
        REQUIRE(anchorer.ok());
        fill(*db, 4);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        CHECK(lines_of(anchors).empty());
        REQUIRE((*anchorer)->stop().ok());
        const auto lines = lines_of(anchors);
        REQUIRE(lines.size() == 1);
        CHECK(parse_anchor(lines[0])->sequence == 4);
        anchorer->reset(); // stopping again changes nothing
        CHECK(lines_of(anchors).size() == 1);
    }
    SUBCASE("restarted on the same file, it goes on from the last anchor") {
        settings.interval = std::chrono::hours(1);
        fill(*db, 2);
        REQUIRE((*audit_anchorer::start(*db, keys.signing(), settings))->stop().ok());
        REQUIRE((*audit_anchorer::start(*db, keys.signing(), settings))->stop().ok()); // nothing new
        CHECK(lines_of(anchors).size() == 1);
        fill(*db, 1);
        REQUIRE((*audit_anchorer::start(*db, keys.signing(), settings))->stop().ok());
        CHECK(lines_of(anchors).size() == 2);
    }
    const auto verdict = checked(*db, keys.verifying(), anchors);
    CHECK(verdict.problems.empty());
    CHECK(verdict.anchors_verified == lines_of(anchors).size());
}

TEST_CASE("audit anchorer: refuses to start on a log that does not continue the anchors file") {
    store_fixture db;
    key_files keys;
    const std::string anchors = (db.directory.path() / "anchors").string();
    audit_anchoring settings;
    settings.anchors_path = anchors;
    settings.interval = std::chrono::hours(1);
    fill(*db, 5);
    anchor_tip(*db, keys.signing(), anchors);

    auto refused = [&](const audit_key& key) {
        auto anchorer = audit_anchorer::start(*db, key, settings);
        REQUIRE_FALSE(anchorer.ok());
        CHECK(anchorer.failure().kind == fhir::category::conflict);
        return anchorer.failure().issues.front().diagnostics;
    };
    SUBCASE("the log continues it: started") {
        fill(*db, 1);
        CHECK(audit_anchorer::start(*db, keys.signing(), settings).ok());
    }
    SUBCASE("records removed from the end") {
        db.close();
        REQUIRE(db.execute(db.drop_trigger("audit_log_never_goes", "audit_log") + "DELETE FROM audit_log WHERE sequence >= 4") == SQLITE_OK);
        db.reopen();
        CHECK(mentions(refused(keys.signing()), "anchors record 5 but the log ends at record 3"));
    }
    SUBCASE("the chain rewritten") {
        rewrite_chain(db, 2);
        CHECK(mentions(refused(keys.signing()), "record 5 is not the one"));
    }
    SUBCASE("another key") {
        key_files other;
        CHECK(mentions(refused(other.signing()), "signed by another key"));
    }
    SUBCASE("a last line that is not an anchor") {
        append_line(anchors, "caregate-audit-anchor/1 sequence=5");
        CHECK(mentions(refused(keys.signing()), "is not an anchor"));
    }
    CHECK(lines_of(anchors).size() >= 1);
}
