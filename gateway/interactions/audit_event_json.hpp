// An audit record (storage::audit_record) written as a FHIR AuditEvent resource
// (https://hl7.org/fhir/R4/auditevent.html): who did what to whose record, when, why and how it
// ended, and the resources it names. Never content. What a record shows depends on its reader
// (trail_reader); which resources it may name is decided before it gets here (audit_event.cpp).
#pragma once

#include "access/policy.hpp"
#include "storage/records.hpp"

#include <string>
#include <utility>
#include <vector>

namespace caregate::interactions {

/// Who is reading the trail, as far as it changes what a record shows.
struct trail_reader {
    const access::organisation_register& organisations;
    /// `detail` is free text the interactions write: a search's parameters, a conditional write's
    /// criteria. It can name citizens other than the record's own (a search over two patients leaves
    /// one record per citizen, each carrying the whole query), so only a reader who may see every
    /// citizen's trail (all_citizens, information governance) is shown it; never a citizen.
    bool shows_detail = false;
};

/// One AuditEvent's JSON.
std::string audit_event_json(const storage::audit_record& r, const trail_reader& reader);

/// The resources a record names, as "Type/id" (system-level records already write them so).
std::vector<std::pair<std::string, std::string>> named_resources(const storage::audit_record& r);

} // namespace caregate::interactions
