// Anchors of the audit chain outside the database: the Ed25519 key, the anchor's line, the
// append-only anchors file and the checkpointing thread. Verification is in audit_anchor_verify.cpp.
// The invariants are listed in storage/audit_anchor.hpp. Every signature is OpenSSL's (EVP); nothing
// cryptographic is written here by hand.
#include "storage/audit_anchor.hpp"

#include "anchor_text.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

namespace caregate::storage {

namespace {

fhir::error anchor_fault(std::string diagnostics) {
    ERR_clear_error(); // what OpenSSL queued must not confuse the next TLS call on this thread
    return fhir::error::make(fhir::category::fault, "exception", std::move(diagnostics));
}

std::string hex_of(const unsigned char* bytes, std::size_t size) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string text;
    text.reserve(2 * size);
    for (std::size_t i = 0; i < size; ++i) {
        text += digits[bytes[i] >> 4];
        text += digits[bytes[i] & 0x0f];
    }
    return text;
}

std::optional<std::string> bytes_of_hex(std::string_view hex) {
    if (hex.size() % 2 != 0 || !detail::is_lower_hex(hex))
        return std::nullopt;
    std::string bytes(hex.size() / 2, '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        unsigned value = 0;
        std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, value, 16);
        bytes[i] = static_cast<char>(value);
    }
    return bytes;
}

/// Reads a PEM key with `read` (PEM_read_bio_PrivateKey or PEM_read_bio_PUBKEY) and checks it is Ed25519.
template <class Read>
fhir::result<std::shared_ptr<evp_pkey_st>> read_ed25519(const std::string& pem_file, const char* what, Read&& read) {
    std::unique_ptr<BIO, decltype(&BIO_free)> file(BIO_new_file(pem_file.c_str(), "r"), BIO_free);
    if (!file)
        return anchor_fault(std::string("cannot read the audit ") + what + " " + pem_file);
    std::shared_ptr<evp_pkey_st> key(read(file.get()), EVP_PKEY_free);
    if (!key)
        return anchor_fault(pem_file + " is not a PEM " + what);
    if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519)
        return anchor_fault(pem_file + " is not an Ed25519 key (make one with openssl genpkey -algorithm ed25519)");
    return key;
}

timestamp now_microseconds() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace

// ---- the key ------------------------------------------------------------------------------------

fhir::result<audit_key> audit_key::from_key(std::shared_ptr<evp_pkey_st> key, bool is_private) {
    std::array<unsigned char, 32> raw{};
    std::size_t size = raw.size();
    if (EVP_PKEY_get_raw_public_key(key.get(), raw.data(), &size) != 1 || size != raw.size())
        return anchor_fault("the audit key's public half could not be read");
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_Digest(raw.data(), size, digest.data(), &length, EVP_sha256(), nullptr) != 1)
        return anchor_fault("SHA-256 failed in OpenSSL");
    audit_key made;
    made.key_ = std::move(key);
    made.id_ = hex_of(digest.data(), 8);
    made.is_private_ = is_private;
    return made;
}

fhir::result<audit_key> audit_key::load_private(const std::string& pem_file) {
    auto key = read_ed25519(pem_file, "private key",
                            [](BIO* in) { return PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr); });
    if (!key)
        return std::move(key).failure();
    return from_key(std::move(*key), true);
}

fhir::result<audit_key> audit_key::load_public(const std::string& pem_file) {
    auto key = read_ed25519(pem_file, "public key",
                            [](BIO* in) { return PEM_read_bio_PUBKEY(in, nullptr, nullptr, nullptr); });
    if (!key)
        return std::move(key).failure();
    return from_key(std::move(*key), false);
}

fhir::result<std::string> audit_key::sign(std::string_view message) const {
    if (!is_private_)
        return anchor_fault("the audit key " + id_ + " is a public key: it cannot sign");
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::array<unsigned char, 64> signature{};
    std::size_t size = signature.size();
    // Ed25519 signs the message itself (no separate digest: the MD argument is null).
    if (!context || EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
        EVP_DigestSign(context.get(), signature.data(), &size, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1)
        return anchor_fault("Ed25519 signing failed in OpenSSL");
    return hex_of(signature.data(), size);
}

bool audit_key::verifies(std::string_view message, std::string_view signature_hex) const {
    const auto signature = bytes_of_hex(signature_hex);
    if (!signature || signature->size() != 64)
        return false;
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    const bool valid =
        context && EVP_DigestVerifyInit(context.get(), nullptr, nullptr, nullptr, key_.get()) == 1 &&
        EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature->data()), signature->size(),
                         reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
    ERR_clear_error(); // a bad signature queues an error; it is an answer here, not a failure
    return valid;
}

// ---- the anchor and its line --------------------------------------------------------------------

std::string audit_anchor::signed_text() const {
    return std::string(detail::anchor_format) + " sequence=" + std::to_string(sequence) + " hash=" + hash +
           " time=" + store::format_instant(time) + " key=" + key_id;
}

std::string audit_anchor::line() const { return signed_text() + " signature=" + signature; }

fhir::result<audit_anchor> make_anchor(const audit_key& key, const store::audit_chain_point& point, timestamp time) {
    audit_anchor anchor;
    anchor.sequence = point.sequence;
    anchor.hash = point.hash;
    anchor.time = time;
    anchor.key_id = key.id();
    auto signature = key.sign(anchor.signed_text());
    if (!signature)
        return std::move(signature).failure();
    anchor.signature = std::move(*signature);
    return anchor;
}

fhir::result<audit_anchor> parse_anchor(std::string_view line) {
    auto malformed = [](std::string why) { return fhir::error::make(fhir::category::malformed, "structure", std::move(why)); };
    // Exactly six fields, one space apart, in this order: a line either is an anchor as
    // audit_anchor::line() writes it, or it is not one.
    std::vector<std::string_view> fields;
    for (std::size_t start = 0;;) {
        const std::size_t space = line.find(' ', start);
        fields.push_back(line.substr(start, space == std::string_view::npos ? std::string_view::npos : space - start));
        if (space == std::string_view::npos)
            break;
        start = space + 1;
    }
    if (fields.empty() || fields[0] != detail::anchor_format)
        return malformed(std::string("it does not start with ") + detail::anchor_format);
    static constexpr std::array<std::string_view, 5> names{"sequence=", "hash=", "time=", "key=", "signature="};
    if (fields.size() != 1 + names.size())
        return malformed("it does not have the six fields of an anchor");
    std::array<std::string_view, 5> values;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (!fields[i + 1].starts_with(names[i]))
            return malformed("field " + std::to_string(i + 2) + " is not " + std::string(names[i]) + "...");
        values[i] = fields[i + 1].substr(names[i].size());
    }
    audit_anchor anchor;
    const auto [end, ec] = std::from_chars(values[0].data(), values[0].data() + values[0].size(), anchor.sequence);
    if (ec != std::errc{} || end != values[0].data() + values[0].size() || anchor.sequence < 1 ||
        values[0].starts_with('0'))
        return malformed("the sequence is not a whole number of 1 or more");
    if (values[1].size() != 64 || !detail::is_lower_hex(values[1]))
        return malformed("the hash is not 64 hex digits");
    anchor.hash = values[1];
    const auto time = detail::parse_instant(values[2]);
    if (!time)
        return malformed("the time is not an instant as caregate writes it");
    anchor.time = *time;
    if (values[3].size() != 16 || !detail::is_lower_hex(values[3]))
        return malformed("the key id is not 16 hex digits");
    anchor.key_id = values[3];
    if (values[4].size() != 128 || !detail::is_lower_hex(values[4]))
        return malformed("the signature is not 128 hex digits");
    anchor.signature = values[4];
    return anchor;
}

// ---- the anchors file ---------------------------------------------------------------------------

fhir::result<anchor_file> anchor_file::open(const std::string& path) {
    const bool existed = std::filesystem::exists(path);
    // Read and append: the last byte is read to close off a line a crash left incomplete. O_APPEND
    // works with a file the operator made append-only (chattr +a), which refuses any other writer.
    const int descriptor = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (descriptor < 0)
        return anchor_fault("cannot open the anchors file " + path + ": " + std::strerror(errno));
    anchor_file file(descriptor, path);
    if (!existed) {
        // The new file's directory entry must survive a crash as its lines do.
        const auto directory = std::filesystem::absolute(path).parent_path();
        if (const int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
            ::fsync(dir);
            ::close(dir);
        }
    }
    struct stat status {};
    if (::fstat(descriptor, &status) != 0)
        return anchor_fault("cannot read the anchors file " + path + ": " + std::strerror(errno));
    char last = '\n';
    if (status.st_size > 0 && ::pread(descriptor, &last, 1, status.st_size - 1) != 1)
        return anchor_fault("cannot read the anchors file " + path + ": " + std::strerror(errno));
    if (last != '\n') {
        // A line a crash cut short: end it, so that the next anchor is a line of its own. The torn
        // line stays, and verification reports it (invariant 5).
        if (::write(descriptor, "\n", 1) != 1 || ::fsync(descriptor) != 0)
            return anchor_fault("cannot write the anchors file " + path + ": " + std::strerror(errno));
    }
    return file;
}

anchor_file::anchor_file(anchor_file&& other) noexcept
    : descriptor_(std::exchange(other.descriptor_, -1)), path_(std::move(other.path_)) {}

anchor_file::~anchor_file() {
    if (descriptor_ >= 0)
        ::close(descriptor_);
}

fhir::status anchor_file::append(const audit_anchor& anchor) {
    const std::string text = anchor.line() + "\n";
    // One write(2) (invariant 3); a short one (a full disk) goes on where it stopped, and its
    // failure leaves a torn line that verification reports.
    std::size_t written = 0;
    while (written < text.size()) {
        const ssize_t n = ::write(descriptor_, text.data() + written, text.size() - written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return anchor_fault("cannot append to the anchors file " + path_ + ": " + std::strerror(errno));
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(descriptor_) != 0)
        return anchor_fault("cannot sync the anchors file " + path_ + ": " + std::strerror(errno));
    return {};
}

// ---- the checkpointer ---------------------------------------------------------------------------

fhir::result<std::unique_ptr<audit_anchorer>> audit_anchorer::start(store& store, audit_key key,
                                                                     audit_anchoring settings) {
    auto file = anchor_file::open(settings.anchors_path);
    if (!file)
        return std::move(file).failure();
    auto last = detail::last_complete_line(settings.anchors_path);
    if (!last)
        return std::move(last).failure();
    std::int64_t last_anchored = 0;
    if (*last) {
        const auto& [number, text] = **last;
        const std::string where = settings.anchors_path + " line " + std::to_string(number);
        auto refuse = [&](const std::string& why) {
            return fhir::error::make(fhir::category::conflict, "conflict",
                                     "the audit log does not continue the anchors file: " + why +
                                         "; run caregate audit verify --anchors to see what changed");
        };
        auto anchor = parse_anchor(text);
        if (!anchor)
            return refuse(where + " is not an anchor (" + anchor.failure().issues.front().diagnostics + ")");
        if (anchor->key_id != key.id())
            return refuse(where + " was signed by another key (" + anchor->key_id + ", not " + key.id() +
                          "): a new key starts a new anchors file");
        if (!key.verifies(anchor->signed_text(), anchor->signature))
            return refuse(where + " has a signature that does not verify");
        auto found = store.audit_hashes_at({anchor->sequence});
        if (!found)
            return std::move(found).failure();
        if (!found->hashes.front())
            return refuse(where + " anchors record " + std::to_string(anchor->sequence) +
                          " but the log ends at record " + std::to_string(found->tip.sequence) +
                          " (records removed from its end, or an older copy of the database restored)");
        if (*found->hashes.front() != anchor->hash)
            return refuse("record " + std::to_string(anchor->sequence) + " is not the one " + where +
                          " anchors (the log rewritten, or an older copy restored and written to since)");
        last_anchored = anchor->sequence;
    }
    std::unique_ptr<audit_anchorer> anchorer(
        new audit_anchorer(store, std::move(key), std::move(settings), std::move(*file), last_anchored));
    anchorer->thread_ = std::thread([raw = anchorer.get()] { raw->run(); });
    return anchorer;
}

audit_anchorer::audit_anchorer(store& store, audit_key key, audit_anchoring settings, anchor_file file,
                               std::int64_t last)
    : store_(store), key_(std::move(key)), settings_(std::move(settings)), file_(std::move(file)),
      last_anchored_(last) {}

audit_anchorer::~audit_anchorer() {
    if (auto stopped = stop(); !stopped && settings_.report)
        settings_.report("the audit chain's last anchor could not be made: " +
                         stopped.failure().issues.front().diagnostics);
}

fhir::result<std::optional<audit_anchor>> audit_anchorer::checkpoint() {
    std::lock_guard lock(checkpoint_mutex_);
    auto tip = store_.audit_tip();
    if (!tip)
        return std::move(tip).failure();
    if (tip->sequence < last_anchored_) // only a hand on the database file can make the log shrink
        return fhir::error::make(fhir::category::conflict, "conflict",
                                 "the audit log ends at record " + std::to_string(tip->sequence) +
                                     ", before record " + std::to_string(last_anchored_) +
                                     " anchored earlier: records were removed from its end");
    if (tip->sequence == last_anchored_)
        return std::optional<audit_anchor>(); // invariant 4
    auto anchor = make_anchor(key_, *tip, now_microseconds());
    if (!anchor)
        return std::move(anchor).failure();
    if (auto appended = file_.append(*anchor); !appended)
        return std::move(appended).failure();
    last_anchored_ = anchor->sequence;
    if (settings_.report)
        settings_.report("audit anchor " + anchor->line());
    return std::optional<audit_anchor>(std::move(*anchor));
}

void audit_anchorer::run() {
    std::unique_lock lock(stop_mutex_);
    while (!stop_wanted_.wait_for(lock, settings_.interval, [this] { return stopping_; })) {
        lock.unlock();
        if (auto made = checkpoint(); !made && settings_.report)
            settings_.report("the audit chain could not be anchored: " + made.failure().issues.front().diagnostics);
        lock.lock();
    }
}

fhir::status audit_anchorer::stop() {
    {
        std::lock_guard lock(stop_mutex_);
        if (stopping_)
            return {};
        stopping_ = true;
    }
    stop_wanted_.notify_all();
    if (thread_.joinable())
        thread_.join();
    auto made = checkpoint();
    if (!made)
        return std::move(made).failure();
    return {};
}

} // namespace caregate::storage
