// Verifying an anchors file against a store's audit log (storage/audit_anchor.hpp, verify_anchors):
// each line a sound anchor of the expected key, and the log still holding the record it names, with
// the hash it names. Reports every line it cannot vouch for (invariant 5); stops at nothing.
#include "storage/audit_anchor.hpp"

#include "anchor_text.hpp"

#include <fstream>

namespace caregate::storage {

namespace {

/// Anchors whose signature held, looked up in the log this many at a time: one snapshot (and one
/// commit of the pending audit records) per batch rather than per anchor, in bounded memory.
constexpr std::size_t lookup_batch = 4096;

struct signed_anchor {
    std::size_t line = 0;
    audit_anchor anchor;
};

std::string count_of(std::int64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

} // namespace

fhir::result<anchors_verification> verify_anchors(const store& store, const audit_key& key, const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return fhir::error::make(fhir::category::fault, "exception", "cannot read the anchors file " + path);
    anchors_verification verdict;
    // The highest sequence of a sound anchor so far, in file order: says where the log last held.
    std::int64_t held_through = 0;
    std::vector<signed_anchor> batch;

    auto check_batch = [&]() -> fhir::status {
        std::vector<std::int64_t> sequences;
        sequences.reserve(batch.size());
        for (const auto& signed_one : batch)
            sequences.push_back(signed_one.anchor.sequence);
        auto found = store.audit_hashes_at(sequences);
        if (!found)
            return std::move(found).failure();
        verdict.tip = found->tip;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const auto& [line, anchor] = batch[i];
            const auto& hash = found->hashes[i];
            const std::string sequence = std::to_string(anchor.sequence);
            if (!hash) {
                const std::int64_t missing = anchor.sequence - found->tip.sequence;
                verdict.problems.push_back(
                    {line, anchor.sequence,
                     "it anchors record " + sequence + " (made " + store::format_instant(anchor.time) +
                         "), but the audit log ends at record " + std::to_string(found->tip.sequence) + ": " +
                         count_of(missing, "record is", "records are") + " missing, " +
                         std::to_string(found->tip.sequence + 1) + " to " + sequence +
                         " at least (the newest records were removed, or an older copy of the database was restored)"});
            } else if (*hash != anchor.hash) {
                verdict.problems.push_back(
                    {line, anchor.sequence,
                     "record " + sequence + " is not the one anchored (made " + store::format_instant(anchor.time) +
                         "): the chain was rewritten at or before record " + sequence +
                         (held_through > 0 ? " and after record " + std::to_string(held_through) +
                                                 ", the last that earlier anchors hold"
                                           : "") +
                         " (or an older copy of the database was restored and has been written to since)"});
            } else {
                ++verdict.anchors_verified;
                held_through = std::max(held_through, anchor.sequence);
                verdict.newest_anchored = std::max(verdict.newest_anchored, anchor.sequence);
            }
        }
        batch.clear();
        return {};
    };

    std::string text;
    while (std::getline(in, text)) {
        const std::size_t line = ++verdict.lines;
        auto anchor = parse_anchor(text);
        if (!anchor) {
            verdict.problems.push_back({line, std::nullopt,
                                        (in.eof() ? "an incomplete last line (cut short while written?), not an anchor: "
                                                  : "not an anchor: ") +
                                            anchor.failure().issues.front().diagnostics});
            continue;
        }
        if (anchor->key_id != key.id()) {
            verdict.problems.push_back({line, anchor->sequence,
                                        "it names another key (" + anchor->key_id + ", not " + key.id() +
                                            "): it cannot be checked with this one"});
            continue;
        }
        if (!key.verifies(anchor->signed_text(), anchor->signature)) {
            verdict.problems.push_back({line, anchor->sequence,
                                        "its signature does not verify: the line was altered, or not made with the key"});
            continue;
        }
        batch.push_back({line, std::move(*anchor)});
        if (batch.size() == lookup_batch)
            if (auto checked = check_batch(); !checked)
                return std::move(checked).failure();
    }
    if (in.bad())
        return fhir::error::make(fhir::category::fault, "exception", "cannot read the anchors file " + path);
    if (auto checked = check_batch(); !checked) // also reads the tip when no line was sound
        return std::move(checked).failure();
    return verdict;
}

} // namespace caregate::storage
