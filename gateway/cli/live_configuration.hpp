// What `caregate serve` reloads on SIGHUP without dropping a connection: the access policy, the
// organisations and the trusted token issuers, read into one generation together with the token
// verifiers, guards and applications made from them; and, through the network layer, the CRLs.
// Not reloaded: the listeners, the server certificate and key, the client CA, the database, and every
// other option.
//
// Invariants:
//  1. A generation never changes once made. A request runs wholly under the generation current when
//     it arrived (its subrequests too), which its responder holds until the request is answered.
//  2. A reload reads every file, and the CRLs, before it changes anything: on any fault the whole
//     configuration in use stays as it was, and the log says why.
//  3. A generation is destroyed only by a reload (or with the live_configuration), once no request
//     holds it: never on a thread of its own application, which destroying it joins.
#pragma once

#include "auth/token.hpp"
#include "interactions/context.hpp"
#include "http/message.hpp"
#include "storage/store.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace caregate::net {
class server;
}
namespace caregate::access {
class guard;
}
namespace caregate::rest {
class request_metrics;
}

namespace caregate::cli {

/// Where the reloadable configuration comes from, and the settings it is made with that do not change.
struct reloadable_settings {
    std::string policy_file;        ///< empty: the shipped default
    std::string organisations_file; ///< empty: the shipped default
    std::string issuers_file;       ///< empty: the development issuer of certs_dir
    std::string certs_dir;          ///< where the development issuer's key is
    std::string crl_file;           ///< the provider listener's CRLs, reloaded by the server; for the log
    interactions::rest_config provider;
    auth::verifier_settings provider_tokens;
    /// The patient-facing endpoint, when it is on. The types citizens may act on (its
    /// CapabilityStatement) are filled in from each generation's policy.
    std::optional<interactions::rest_config> patients;
    auth::verifier_settings citizen_tokens;
};

/// One reading of the files and what is made from them. Defined in live_configuration.cpp.
struct configuration_generation;

class live_configuration {
public:
    /// Reads the first generation. Throws std::invalid_argument naming the file and the fault. Every
    /// generation's applications count the requests they answer in `metrics`, when given, which must
    /// outlive this.
    live_configuration(reloadable_settings settings, storage::store& store, rest::request_metrics* metrics = nullptr);
    ~live_configuration();
    live_configuration(const live_configuration&) = delete;
    live_configuration& operator=(const live_configuration&) = delete;

    /// The handlers of the provider and the patient-facing listeners (invariant 1).
    http::handler provider_handler();
    http::handler patient_handler();

    /// What SIGHUP does: reads `server`'s CRL files and every file of this configuration again, then
    /// puts them all in use at once: new handshakes check the new CRLs, new requests run under the new
    /// generation. On any fault nothing changes (invariant 2). Logs one line either way, naming the
    /// files (and the fault), never patient data. One reload at a time. Returns whether it reloaded.
    bool reload(net::server& server);

    /// The provider listener's guard in the generation current now, held as long as the pointer is
    /// (invariant 3 still holds: a reload keeps a retired generation while anything holds it): for
    /// work that runs beside requests, the export jobs.
    std::shared_ptr<const access::guard> provider_guard() const;

    /// A warning to print when the patient-facing endpoint sends citizens to log in with an issuer
    /// whose tokens are not trusted; empty when all is well.
    std::string untrusted_smart_issuer() const;

    /// Generations that a request still holds after a reload replaced them, and the current one. For
    /// tests of invariant 3.
    std::size_t generations() const;

private:
    std::shared_ptr<configuration_generation> read() const;

    const reloadable_settings settings_;
    storage::store& store_;
    rest::request_metrics* const metrics_;
    std::atomic<std::shared_ptr<configuration_generation>> current_;
    mutable std::mutex reload_mutex_;                            // one reload at a time
    std::vector<std::shared_ptr<configuration_generation>> retired_; // guarded by reload_mutex_
};

} // namespace caregate::cli
