// Anchors of the audit chain outside the database: now and then the chain's tip (the newest record's
// sequence and hash) is signed with an Ed25519 key that is not in the database and appended, one line
// per anchor, to a file kept apart from it. Whoever can write the database file can rewrite the audit
// log and recompute every hash, remove its newest records or put an older copy in its place; they
// cannot sign an anchor for what they wrote, so an anchor the log no longer matches shows it.
// Not part of the store: this reads the chain through store::audit_tip and store::audit_hashes_at
// only, and the store knows nothing of keys or anchor files.
//
// Invariants kept here (tests/storage/audit_anchor_test.cpp proves them):
//  1. An anchor names a committed record (store::audit_tip reads committed records only), so the
//     database of a running server always holds every record its anchors name.
//  2. The signature covers exactly the line's text before " signature=", which holds the format's
//     version, the sequence, the hash, the time and the key's id: nothing in a line is unsigned.
//  3. A line is appended with one write(2) to a file opened O_APPEND and fsynced before the anchor
//     is reported made; the file is never truncated or rewritten by caregate.
//  4. An anchor is taken only when the tip has moved past the last one (never of the empty chain),
//     so the file grows with the log's activity, not with time.
//  5. Verification reports every line it cannot vouch for (malformed, signed by another key, bad
//     signature, naming a record missing or different): none is skipped.
#pragma once

#include "storage/store.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

struct evp_pkey_st; // OpenSSL's EVP_PKEY, kept out of this header

namespace caregate::storage {

/// An Ed25519 key of the anchors. Ed25519 rather than an HMAC: verifying needs only the public
/// key, so an auditor can check the anchors without being able to make one.
class audit_key {
public:
    /// A PEM Ed25519 private key (`openssl genpkey -algorithm ed25519`), for signing anchors.
    /// Errors: fault, naming the file (unreadable, not PEM, not Ed25519).
    static fhir::result<audit_key> load_private(const std::string& pem_file);
    /// A PEM Ed25519 public key (`openssl pkey -in KEY -pubout`), for verifying anchors only.
    static fhir::result<audit_key> load_public(const std::string& pem_file);

    /// 16 hex digits, the start of the SHA-256 of the raw public key: names the key in every anchor,
    /// so that an anchor made with another key is told apart from a forged one.
    const std::string& id() const { return id_; }
    /// Hex Ed25519 signature of `message`. Errors: fault (a public key only; OpenSSL failed).
    fhir::result<std::string> sign(std::string_view message) const;
    /// True when `signature_hex` is this key's signature of `message`.
    bool verifies(std::string_view message, std::string_view signature_hex) const;

private:
    /// The key with its id computed.
    static fhir::result<audit_key> from_key(std::shared_ptr<evp_pkey_st> key, bool is_private);
    std::shared_ptr<evp_pkey_st> key_;
    std::string id_;
    bool is_private_ = false;
};

/// One checkpoint of the chain. As a line:
/// `caregate-audit-anchor/1 sequence=N hash=HEX64 time=INSTANT key=HEX16 signature=HEX128`.
struct audit_anchor {
    std::int64_t sequence = 0; ///< the anchored record's sequence (1 or more)
    std::string hash;          ///< that record's hash
    timestamp time = 0;        ///< when the anchor was made (microseconds since the epoch, UTC)
    std::string key_id;        ///< audit_key::id of the key that signed it
    std::string signature;     ///< hex Ed25519 signature of signed_text()

    /// The text the signature covers: the line up to " signature=" (invariant 2).
    std::string signed_text() const;
    /// The whole line, without its newline.
    std::string line() const;
};

/// A signed anchor of `point` made at `time`. Errors: fault (the key cannot sign).
fhir::result<audit_anchor> make_anchor(const audit_key& key, const store::audit_chain_point& point, timestamp time);
/// Reads one line strictly (exactly the fields of audit_anchor::line, in order). Does not check the
/// signature. Errors: malformed, saying what is wrong.
fhir::result<audit_anchor> parse_anchor(std::string_view line);

/// An anchors file opened for appending (invariant 3). Created (mode 0640) if absent.
class anchor_file {
public:
    /// Errors: fault, naming the file.
    static fhir::result<anchor_file> open(const std::string& path);
    anchor_file(anchor_file&& other) noexcept;
    anchor_file& operator=(anchor_file&&) = delete;
    ~anchor_file();
    /// Appends the anchor's line and fsyncs. Errors: fault.
    fhir::status append(const audit_anchor& anchor);
    const std::string& path() const { return path_; }

private:
    anchor_file(int descriptor, std::string path) : descriptor_(descriptor), path_(std::move(path)) {}
    int descriptor_ = -1;
    std::string path_;
};

/// What verify_anchors found wrong with one line of the anchors file.
struct anchor_problem {
    std::size_t line = 0;                   ///< 1-based line number in the anchors file
    std::optional<std::int64_t> sequence;   ///< the sequence the line anchors, when it could be read
    std::string problem;                    ///< in words, for the operator
};

struct anchors_verification {
    std::size_t lines = 0;                  ///< lines in the file
    std::size_t anchors_verified = 0;       ///< lines that are sound anchors the log matches
    std::int64_t newest_anchored = 0;       ///< highest sequence among those (0: none)
    store::audit_chain_point tip;           ///< the log's newest record when checked
    std::vector<anchor_problem> problems;   ///< in line order; empty: every anchor holds
};

/// Checks every line of the anchors file at `path` against `store`'s audit log: a well-formed
/// anchor, made with `key` (by its id), its signature valid, the record it names present (else
/// records were removed from the end, or an older copy of the database restored) and with the
/// anchored hash (else the chain was rewritten at or before it). Errors: fault (the file cannot be
/// read), busy or fault from the store. Problems with the content are in the result, not errors.
fhir::result<anchors_verification> verify_anchors(const store& store, const audit_key& key, const std::string& path);

/// Settings of audit_anchorer.
struct audit_anchoring {
    std::string anchors_path;                ///< the anchors file (created if absent)
    /// How often the tip is checkpointed (when it moved): the records after the last anchor are
    /// unprotected until the next one. A minute: a minute of records at risk, and at most 1,440
    /// lines (about 300 KiB) a day, each costing one commit of the reads' pending audit records.
    std::chrono::milliseconds interval{std::chrono::seconds(60)};
    /// Where each anchor made, and each failure to make one, is reported (a line of text, never
    /// patient data: anchors hold sequences, hashes, times and key ids only). May be empty.
    std::function<void(const std::string&)> report;
};

/// Checkpoints a store's audit chain: a thread that anchors the tip every interval when it moved,
/// and a last anchor when stopped (a clean shutdown). One per store and anchors file.
class audit_anchorer {
public:
    /// Opens the anchors file and checks that the store continues it: the last line must be an
    /// anchor made with `key` whose record the log holds, with the anchored hash. Otherwise the log
    /// was rewritten, cut short or restored from an older copy since the last anchor, and new
    /// anchors would only bury the evidence: refused (conflict, saying which), and the operator
    /// decides (README, "The audit trail"). Then starts the thread. Errors: fault, conflict.
    static fhir::result<std::unique_ptr<audit_anchorer>> start(store& store, audit_key key, audit_anchoring settings);
    /// stop() if not yet stopped.
    ~audit_anchorer();
    audit_anchorer(const audit_anchorer&) = delete;
    audit_anchorer& operator=(const audit_anchorer&) = delete;

    /// Anchors the tip now if it moved since the last anchor (invariant 4); the anchor made, or
    /// nothing. Errors: from the store, the key or the file.
    fhir::result<std::optional<audit_anchor>> checkpoint();
    /// Stops the thread and anchors the tip a last time: call after the last request is answered.
    fhir::status stop();

private:
    audit_anchorer(store& store, audit_key key, audit_anchoring settings, anchor_file file, std::int64_t last);
    void run();

    store& store_;
    const audit_key key_;
    const audit_anchoring settings_;
    std::mutex checkpoint_mutex_; ///< one checkpoint at a time (the thread, stop(), a caller)
    anchor_file file_;
    std::int64_t last_anchored_ = 0;
    std::mutex stop_mutex_;
    std::condition_variable stop_wanted_;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace caregate::storage
