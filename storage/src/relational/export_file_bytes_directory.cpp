// Export files' bytes as plain files (SQLite's store; export_file_bytes.hpp, where the invariants
// are): `<directory>/<job id>/<id>.ndjson`, readable by the server's user only.
//
// A put is one file, its pieces one after another, durable when put returns: the file is written and
// fsynced, then the directory that names it (and the job's directory, when the put made it, in the
// directory above). A crash before then
// leaves at most a partial file that no row references (the row commits only after put returns),
// which the sweep deletes. Ids are microsecond times, increasing within the process, and a file is
// made only where none is (O_EXCL), so an id is never given twice for a job (invariant 1). Deleting
// is unlinking (invariant 2): the file system frees the extents without reading them.
#include "export_file_bytes.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

namespace caregate::storage::detail {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view suffix = ".ndjson";

fhir::error file_failure(std::string_view doing, int error) {
    std::string diagnostics = "storage failure while keeping an export file: ";
    diagnostics += doing;
    diagnostics += ": ";
    diagnostics += std::strerror(error);
    // A full disk may free up (an expiry, an operator): the client retries, as with a busy database.
    if (error == ENOSPC || error == EDQUOT)
        return fhir::error::make(fhir::category::busy, "transient", std::move(diagnostics));
    return fhir::error::make(fhir::category::fault, "exception", std::move(diagnostics));
}

/// A job's id names a directory only when it cannot climb out of it or name another: the store's
/// ids are UUIDs.
bool names_a_directory(std::string_view job_id) {
    return !job_id.empty() && job_id.size() <= 128 && std::all_of(job_id.begin(), job_id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
    });
}

/// Closes a descriptor when it goes out of scope.
struct descriptor {
    int fd = -1;
    explicit descriptor(int opened) : fd(opened) {}
    ~descriptor() {
        if (fd >= 0)
            ::close(fd);
    }
    descriptor(const descriptor&) = delete;
    descriptor& operator=(const descriptor&) = delete;
};

/// fsyncs a directory, so that the names made or removed in it last.
int sync_directory(const fs::path& directory) {
    descriptor dir(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.fd < 0 || ::fsync(dir.fd) != 0)
        return errno;
    return 0;
}

/// The id a file's name gives, or nothing for a name that is not `<digits>.ndjson`.
std::optional<std::int64_t> id_named(const std::string& name) {
    if (name.size() <= suffix.size() || !name.ends_with(suffix))
        return std::nullopt;
    std::int64_t id = 0;
    const char* end = name.data() + name.size() - suffix.size();
    const auto [stopped, error] = std::from_chars(name.data(), end, id);
    if (error != std::errc() || stopped != end || id <= 0)
        return std::nullopt;
    return id;
}

class bytes_in_directory final : public export_file_bytes {
public:
    explicit bytes_in_directory(fs::path root) : root_(std::move(root)) {}

    fhir::result<std::vector<stored_piece>> put(std::string_view job_id,
                                                std::span<const std::string_view> pieces) override {
        if (!names_a_directory(job_id))
            return fhir::error::make(fhir::category::fault, "exception", "an export job's id cannot name a directory");
        const fs::path dir = root_ / job_id;
        bool directory_made = false;
        for (;;) {
            if (!directory_made) {
                if (::mkdir(dir.c_str(), 0700) == 0) {
                    if (const int error = sync_directory(root_))
                        return file_failure("recording a job's directory", error);
                } else if (errno != EEXIST) {
                    return file_failure("making a job's directory", errno);
                }
                directory_made = true;
            }
            const std::int64_t id = next_id();
            const fs::path file = dir / (std::to_string(id) + std::string(suffix));
            descriptor out(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
            if (out.fd < 0) {
                if (errno == EEXIST)
                    continue; // another process's id, or a clock set back: the next one
                if (errno == ENOENT) {
                    directory_made = false; // removed as empty since: made again
                    continue;
                }
                return file_failure("making a file", errno);
            }
            // The pieces one after another in the one file.
            std::vector<stored_piece> stored;
            std::int64_t at = 0;
            int error = 0;
            for (const std::string_view piece : pieces) {
                if ((error = write_all(out.fd, piece)) != 0)
                    break;
                stored.push_back({id, at, static_cast<std::int64_t>(piece.size())});
                at += static_cast<std::int64_t>(piece.size());
            }
            if (error == 0 && ::fsync(out.fd) != 0)
                error = errno;
            if (error == 0)
                error = sync_directory(dir);
            if (error != 0) {
                ::unlink(file.c_str()); // unreferenced either way; gone now rather than at the sweep
                return file_failure("writing a file", error);
            }
            return stored;
        }
    }

    fhir::result<std::optional<std::string>> get(std::string_view job_id, const stored_piece& piece) override {
        if (!names_a_directory(job_id) || piece.start < 0)
            return std::optional<std::string>();
        const fs::path file = root_ / job_id / (std::to_string(piece.id) + std::string(suffix));
        descriptor in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        if (in.fd < 0) {
            if (errno == ENOENT)
                return std::optional<std::string>();
            return file_failure("opening a file", errno);
        }
        std::int64_t length = piece.length;
        if (length < 0) {
            struct stat about {};
            if (::fstat(in.fd, &about) != 0)
                return file_failure("reading a file", errno);
            length = std::max<std::int64_t>(0, about.st_size - piece.start);
        }
        std::string bytes(static_cast<std::size_t>(length), '\0');
        std::size_t read_so_far = 0;
        while (read_so_far < bytes.size()) {
            const ssize_t n = ::pread(in.fd, bytes.data() + read_so_far, bytes.size() - read_so_far,
                                      static_cast<off_t>(piece.start + static_cast<std::int64_t>(read_so_far)));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return file_failure("reading a file", errno);
            if (n == 0) // shorter than its row says: changed since it was fsynced, not served
                return file_failure("reading a file", EIO);
            read_so_far += static_cast<std::size_t>(n);
        }
        return std::optional<std::string>(std::move(bytes));
    }

    fhir::result<std::vector<std::string>> jobs() override {
        std::vector<std::string> found;
        std::error_code error;
        for (fs::directory_iterator entry(root_, error), end; !error && entry != end; entry.increment(error))
            if (entry->is_directory(error) && names_a_directory(entry->path().filename().string()))
                found.push_back(entry->path().filename().string());
        if (error)
            return file_failure("listing the jobs", error.value());
        return found;
    }

    fhir::result<std::vector<std::int64_t>> ids_of(std::string_view job_id) override {
        std::vector<std::int64_t> found;
        if (!names_a_directory(job_id))
            return found;
        std::error_code error;
        for (fs::directory_iterator entry(root_ / job_id, error), end; !error && entry != end; entry.increment(error))
            if (auto id = id_named(entry->path().filename().string()))
                found.push_back(*id);
        if (error && error != std::errc::no_such_file_or_directory)
            return file_failure("listing a job's files", error.value());
        std::sort(found.begin(), found.end());
        return found;
    }

    fhir::status remove(std::string_view job_id, std::span<const std::int64_t> ids) override {
        if (!names_a_directory(job_id))
            return {};
        const fs::path dir = root_ / job_id;
        for (const std::int64_t id : ids) {
            const fs::path file = dir / (std::to_string(id) + std::string(suffix));
            if (::unlink(file.c_str()) != 0 && errno != ENOENT)
                return file_failure("deleting a file", errno);
        }
        // The job's directory goes once it is empty (it fails, harmlessly, while it is not; a put
        // that finds it gone makes it again).
        ::rmdir(dir.c_str());
        return {};
    }

private:
    static int write_all(int fd, std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::write(fd, bytes.data(), bytes.size());
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return errno;
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return 0;
    }

    std::int64_t next_id() {
        const std::int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
        std::int64_t last = last_id_.load();
        std::int64_t id;
        do
            id = std::max(last + 1, now);
        while (!last_id_.compare_exchange_weak(last, id));
        return id;
    }

    const fs::path root_;
    std::atomic<std::int64_t> last_id_{0};
};

} // namespace

fhir::result<std::unique_ptr<export_file_bytes>> export_file_bytes_in_directory(fs::path directory) {
    if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST)
        return file_failure("making the directory " + directory.string(), errno);
    struct stat about {};
    if (::stat(directory.c_str(), &about) != 0)
        return file_failure("opening the directory " + directory.string(), errno);
    if (!S_ISDIR(about.st_mode))
        return file_failure("opening the directory " + directory.string(), ENOTDIR);
    return std::unique_ptr<export_file_bytes>(std::make_unique<bytes_in_directory>(std::move(directory)));
}

} // namespace caregate::storage::detail
