// A SQLite VFS for tests that passes everything to the default one (unix) and, while a fault is set,
// fails writes as a file system with that fault would: a full disk makes every xWrite fail with
// SQLITE_FULL (what the unix VFS returns for ENOSPC), a file system gone read-only with
// SQLITE_IOERR_WRITE (what it returns for EROFS or EACCES from write(2)), xTruncate likewise.
// Reads, locks and the WAL index (shared memory) are untouched, as they are by those faults.
// The shim is the one SQLite's own vfstrace.c makes: a file of ours in front of the real one.
//
//   storage::sqlite_options options;
//   options.vfs = testing::fault_vfs_name();
//   { testing::fault_while full(testing::fs_fault::disk_full); ... } // cleared at the end of the scope
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <mutex>

namespace caregate::testing {

enum class fs_fault { none, disk_full, read_only };

/// The fault every file opened through the VFS has now (all of them, at once).
inline std::atomic<fs_fault>& fault_vfs_fault() {
    static std::atomic<fs_fault> fault{fs_fault::none};
    return fault;
}

/// Sets a fault for the life of the object; it clears when the object goes, a failed REQUIRE too, so
/// that no later test finds its files failing.
struct fault_while {
    explicit fault_while(fs_fault fault) { fault_vfs_fault() = fault; }
    ~fault_while() { clear(); }
    fault_while(const fault_while&) = delete;
    fault_while& operator=(const fault_while&) = delete;
    void clear() { fault_vfs_fault() = fs_fault::none; }
};

/// Writes (xWrite calls) that failed because of a fault: a test can tell the fault was met.
inline std::atomic<unsigned long>& fault_vfs_refused() {
    static std::atomic<unsigned long> refused{0};
    return refused;
}

namespace fault_vfs_detail {

struct file {
    sqlite3_file base;   // pMethods: ours
    sqlite3_file* real;  // the default VFS's file, right after this struct
};

inline sqlite3_file* real(sqlite3_file* f) { return reinterpret_cast<file*>(f)->real; }

inline int write_fault(int full_code, int read_only_code) {
    switch (fault_vfs_fault().load()) {
    case fs_fault::disk_full: ++fault_vfs_refused(); return full_code;
    case fs_fault::read_only: ++fault_vfs_refused(); return read_only_code;
    case fs_fault::none: break;
    }
    return SQLITE_OK;
}

inline int x_close(sqlite3_file* f) {
    int rc = SQLITE_OK;
    if (real(f)->pMethods)
        rc = real(f)->pMethods->xClose(real(f));
    return rc;
}
inline int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
    return real(f)->pMethods->xRead(real(f), buf, n, off);
}
inline int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
    if (int rc = write_fault(SQLITE_FULL, SQLITE_IOERR_WRITE); rc != SQLITE_OK)
        return rc;
    return real(f)->pMethods->xWrite(real(f), buf, n, off);
}
inline int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
    if (fault_vfs_fault().load() == fs_fault::read_only) {
        ++fault_vfs_refused();
        return SQLITE_IOERR_TRUNCATE;
    }
    return real(f)->pMethods->xTruncate(real(f), size);
}
inline int x_sync(sqlite3_file* f, int flags) { return real(f)->pMethods->xSync(real(f), flags); }
inline int x_file_size(sqlite3_file* f, sqlite3_int64* size) { return real(f)->pMethods->xFileSize(real(f), size); }
inline int x_lock(sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); }
inline int x_unlock(sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); }
inline int x_check_reserved_lock(sqlite3_file* f, int* out) {
    return real(f)->pMethods->xCheckReservedLock(real(f), out);
}
inline int x_file_control(sqlite3_file* f, int op, void* arg) {
    return real(f)->pMethods->xFileControl(real(f), op, arg);
}
inline int x_sector_size(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
inline int x_device_characteristics(sqlite3_file* f) {
    return real(f)->pMethods->xDeviceCharacteristics(real(f));
}
inline int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
    return real(f)->pMethods->xShmMap(real(f), region, size, extend, out);
}
inline int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
inline void x_shm_barrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
inline int x_shm_unmap(sqlite3_file* f, int remove) { return real(f)->pMethods->xShmUnmap(real(f), remove); }
inline int x_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
    return real(f)->pMethods->xFetch(real(f), off, n, out);
}
inline int x_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
    return real(f)->pMethods->xUnfetch(real(f), off, p);
}

inline const sqlite3_io_methods methods = {
    3,          x_close,     x_read,       x_write,     x_truncate,   x_sync,
    x_file_size, x_lock,     x_unlock,     x_check_reserved_lock, x_file_control, x_sector_size,
    x_device_characteristics, x_shm_map, x_shm_lock, x_shm_barrier, x_shm_unmap, x_fetch, x_unfetch,
};

inline sqlite3_vfs*& parent() {
    static sqlite3_vfs* vfs = nullptr;
    return vfs;
}

inline int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
    auto* ours = reinterpret_cast<file*>(f);
    ours->real = reinterpret_cast<sqlite3_file*>(ours + 1);
    ours->real->pMethods = nullptr;
    const int rc = parent()->xOpen(parent(), name, ours->real, flags, out_flags);
    // SQLite calls xClose on a failed open only when pMethods is set: ours then closes theirs.
    ours->base.pMethods = ours->real->pMethods ? &methods : nullptr;
    return rc;
}

} // namespace fault_vfs_detail

/// Registers the VFS (once; not as the default) and returns its name, for sqlite_options::vfs.
inline const char* fault_vfs_name() {
    static std::once_flag registered;
    static sqlite3_vfs vfs;
    std::call_once(registered, [] {
        sqlite3_initialize();
        sqlite3_vfs* parent = sqlite3_vfs_find(nullptr);
        fault_vfs_detail::parent() = parent;
        vfs = *parent; // every other method is the default VFS's own (they take no file)
        vfs.pNext = nullptr;
        vfs.zName = "caregate-faults";
        vfs.szOsFile = static_cast<int>(sizeof(fault_vfs_detail::file)) + parent->szOsFile;
        vfs.xOpen = fault_vfs_detail::x_open;
        sqlite3_vfs_register(&vfs, 0);
    });
    return "caregate-faults";
}

} // namespace caregate::testing
