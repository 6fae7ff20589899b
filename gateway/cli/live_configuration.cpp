// The configuration `caregate serve` reloads on SIGHUP; see live_configuration.hpp for its invariants.
#include "cli/live_configuration.hpp"

#include "access/defaults.hpp"
#include "access/guard.hpp"
#include "access/policy.hpp"
#include "auth/issuers.hpp"
#include "net/server.hpp"
#include "rest/application.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace caregate::cli {

struct configuration_generation {
    configuration_generation(access::policy rules, access::organisation_register organisations_read,
                             std::vector<auth::trusted_issuer> issuers, const reloadable_settings& settings,
                             storage::store& store, rest::request_metrics* metrics)
        : policy(std::move(rules)), organisations(std::move(organisations_read)), issuer_names(names_of(issuers)),
          provider_tokens(issuers, settings.provider_tokens),
          provider_guard(policy, organisations, provider_tokens, store),
          provider_app(store, provider_guard, settings.provider, metrics) {
        if (!settings.patients)
            return;
        // The patient-facing endpoint: the same policy and trusted issuers, but its own verifier
        // (citizens' tokens only, with its own audience, so that neither listener takes the other's
        // tokens), its own guard and its own application (its CapabilityStatement, SMART discovery).
        citizen_tokens.emplace(std::move(issuers), settings.citizen_tokens);
        citizen_guard.emplace(policy, organisations, *citizen_tokens, store);
        interactions::rest_config patient_config = *settings.patients;
        patient_config.patient_readable_types = policy.patient_types(access::action::read);
        patient_config.patient_creatable_types = policy.patient_types(access::action::create);
        patient_config.patient_updatable_types = policy.patient_types(access::action::update);
        patient_config.patient_deletable_types = policy.patient_types(access::action::delete_);
        patient_app.emplace(store, *citizen_guard, std::move(patient_config), metrics);
    }

    static std::vector<std::string> names_of(const std::vector<auth::trusted_issuer>& issuers) {
        std::vector<std::string> names;
        for (const auto& issuer : issuers)
            names.push_back(issuer.issuer);
        return names;
    }

    // In this order: each refers to those above it, and so goes before them.
    const access::policy policy;
    const access::organisation_register organisations;
    const std::vector<std::string> issuer_names;
    const auth::token_verifier provider_tokens;
    const access::guard provider_guard;
    rest::application provider_app;
    std::optional<auth::token_verifier> citizen_tokens;
    std::optional<access::guard> citizen_guard;
    std::optional<rest::application> patient_app;
};

namespace {

std::string read_text_file(const std::string& path, const char* what) {
    std::ifstream in(path);
    if (!in)
        throw std::invalid_argument(std::string("cannot read the ") + what + " " + path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Runs every request through the application `pick` chooses in the generation current when it
/// arrives, and keeps that generation until the request is answered (invariant 1).
http::handler handler_of(std::atomic<std::shared_ptr<configuration_generation>>& current,
                         rest::application& (*pick)(configuration_generation&)) {
    return [&current, pick](http::request req, http::responder done) {
        std::shared_ptr<configuration_generation> held = current.load();
        rest::application& app = pick(*held);
        app.handle(std::move(req), [held = std::move(held), done = std::move(done)](http::response out) {
            done(std::move(out));
        });
    };
}

/// One line to standard error, in one write so that lines of several threads do not interleave.
void log_line(const std::string& text) {
    const std::string line = "caregate: " + text + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
}

std::string file_or(const std::string& file, const char* otherwise) { return file.empty() ? otherwise : file; }

} // namespace

live_configuration::live_configuration(reloadable_settings settings, storage::store& store,
                                       rest::request_metrics* metrics)
    : settings_(std::move(settings)), store_(store), metrics_(metrics) {
    current_.store(read());
}

live_configuration::~live_configuration() = default;

std::shared_ptr<configuration_generation> live_configuration::read() const {
    access::policy policy = access::policy::parse(settings_.policy_file.empty()
                                                      ? std::string(access::default_policy_json)
                                                      : read_text_file(settings_.policy_file, "policy file"));
    access::organisation_register organisations = access::organisation_register::parse(
        settings_.organisations_file.empty() ? std::string(access::default_organisations_json)
                                             : read_text_file(settings_.organisations_file, "organisations file"));
    std::vector<auth::trusted_issuer> issuers = settings_.issuers_file.empty()
                                                    ? std::vector<auth::trusted_issuer>{auth::dev_issuer(settings_.certs_dir)}
                                                    : auth::load_issuers(settings_.issuers_file);
    return std::make_shared<configuration_generation>(std::move(policy), std::move(organisations), std::move(issuers),
                                                      settings_, store_, metrics_);
}

http::handler live_configuration::provider_handler() {
    return handler_of(current_, [](configuration_generation& g) -> rest::application& { return g.provider_app; });
}

http::handler live_configuration::patient_handler() {
    if (!settings_.patients)
        throw std::logic_error("the patient-facing endpoint is off");
    return handler_of(current_, [](configuration_generation& g) -> rest::application& { return *g.patient_app; });
}

bool live_configuration::reload(net::server& server) {
    const std::lock_guard lock(reload_mutex_);
    try {
        // Everything is read and checked before anything is used (invariant 2).
        const auto use_revocation_lists = server.read_revocation_lists();
        std::shared_ptr<configuration_generation> next = read();
        use_revocation_lists();
        retired_.push_back(current_.exchange(std::move(next)));
    } catch (const std::exception& e) {
        log_line(std::string("the reload failed; the configuration in use is unchanged: ") + e.what());
        return false;
    }
    // Invariant 3: a generation only this list holds has no request left, and none can take it again.
    std::erase_if(retired_, [](const std::shared_ptr<configuration_generation>& g) { return g.use_count() == 1; });
    std::string line = "reloaded the policy (" + file_or(settings_.policy_file, "the shipped default") +
                       "), the organisations (" + file_or(settings_.organisations_file, "the shipped default") +
                       "), the trusted issuers (" +
                       file_or(settings_.issuers_file, "the development issuer of --certs") + ")";
    if (!settings_.crl_file.empty())
        line += " and the CRLs (" + settings_.crl_file + ")";
    log_line(line + "; requests and handshakes from now on use them");
    if (const std::string warning = untrusted_smart_issuer(); !warning.empty())
        log_line(warning);
    return true;
}

std::shared_ptr<const access::guard> live_configuration::provider_guard() const {
    std::shared_ptr<configuration_generation> generation = current_.load();
    const access::guard* guard = &generation->provider_guard;
    return {std::move(generation), guard};
}

std::string live_configuration::untrusted_smart_issuer() const {
    if (!settings_.patients)
        return {};
    const std::string& issuer = settings_.patients->smart.issuer;
    const auto generation = current_.load();
    if (std::find(generation->issuer_names.begin(), generation->issuer_names.end(), issuer) !=
        generation->issuer_names.end())
        return {};
    return "warning: --smart-issuer " + issuer +
           " is not a trusted issuer (--issuers): apps would be sent to log in where no token is accepted";
}

std::size_t live_configuration::generations() const {
    const std::lock_guard lock(reload_mutex_);
    return retired_.size() + 1;
}

} // namespace caregate::cli
