// The store (storage/store.hpp) as the relational engine keeps it, whichever database is under it:
// pooled readers, one writer thread that commits in groups, the search index tables, the visibility
// rule rendered as SQL. Its two databases are SQLite (storage/sqlite_store.hpp, the embedded default)
// and PostgreSQL (storage/postgresql_store.hpp, for several nodes on one database). The invariants
// it keeps are listed in storage/src/relational/engine.hpp.
#pragma once

#include "storage/store.hpp"

#include <memory>

namespace caregate::storage {

struct relational_engine; // storage/src/relational/engine.hpp

class relational_store : public store {
public:
    ~relational_store() override;

    fhir::result<stored_version> read(std::string_view type, std::string_view id) const override;
    fhir::result<stored_version> read_current(std::string_view type, std::string_view id) const override;
    void read_current_async(std::string_view type, std::string_view id,
                            std::function<void(fhir::result<stored_version>)> then) const override;
    fhir::result<stored_version> vread(std::string_view type, std::string_view id,
                                       std::int64_t version_id) const override;
    fhir::status binary_bytes(
        std::string_view id, std::int64_t version_id,
        const std::function<fhir::status(std::string_view part, std::size_t whole)>& each) const override;
    fhir::result<history_page> history(const history_query& query) const override;
    fhir::result<search_page> search(const search_request& request) const override;
    fhir::result<std::vector<bool>> visible_resources(
        const search_visibility& visibility,
        const std::vector<std::pair<std::string, std::string>>& resources) const override;

    void submit(write_request request, write_callback done) override;
    void submit_all(std::vector<std::pair<write_request, write_callback>> writes) override;
    fhir::result<write_outcome> write(write_request request) override;
    void submit_transaction(std::vector<write_request> writes, transaction_callback done) override;
    void prepare_index(write_request& request) const override;

    fhir::result<citizen_standing> standing(std::string_view nhs_number, std::string_view organisation,
                                            std::string_view user, std::string_view role, timestamp recent_since,
                                            timestamp now, std::uint64_t seen_generation = 0) const override;

    void append_audit(std::vector<audit_record> records, std::function<void(fhir::status)> done = {}) override;
    std::size_t audit_backlog() const noexcept override;
    bool audit_backlog_full() const noexcept override;
    void grant_break_glass(break_glass_grant grant, audit_record audit,
                           std::function<void(fhir::status)> done = {}) override;
    void create_export(export_job job, std::function<void(fhir::result<export_job>)> done) override;
    fhir::result<std::optional<export_job>> find_export(std::string_view id) const override;
    fhir::result<std::vector<export_file_summary>> export_files(std::string_view id) const override;
    fhir::result<std::optional<std::string>> export_file_content(std::string_view id,
                                                                 std::int64_t number) const override;
    fhir::result<std::optional<export_job>> claim_export(std::string worker, timestamp now,
                                                         timestamp lease_until) override;
    fhir::status save_export_progress(export_progress progress) override;
    fhir::status release_export(std::string job_id, std::string worker) override;
    void cancel_export(std::string id, std::function<void(fhir::result<bool>)> done) override;
    fhir::result<std::int64_t> remove_expired_exports(timestamp now) override;
    fhir::result<audit_page> audit(const audit_query& query) const override;
    fhir::result<audit_record> audit_record_at(std::int64_t sequence) const override;
    fhir::result<audit_verification> verify_audit() const override;
    fhir::result<audit_chain_point> audit_tip() const override;
    fhir::result<audit_chain_lookup> audit_hashes_at(const std::vector<std::int64_t>& sequences) const override;
    store_statistics statistics() const override;

    /// The database's plan for a search's page query, one step a line (SQLite: EXPLAIN QUERY PLAN;
    /// PostgreSQL: EXPLAIN, the plan for these values): for tests that the planner's queries use the
    /// indexes, and for diagnosing a slow search.
    fhir::result<std::string> explain_search(const search_request& request) const;

protected:
    explicit relational_store(std::unique_ptr<relational_engine> engine);
    std::unique_ptr<relational_engine> impl_;
};

} // namespace caregate::storage
