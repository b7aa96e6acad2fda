// Cleanup.swift: removing a records directory that memdir made (`run` after a clean run,
// `memdir clean`). Block records are symlinks: they are unlinked, never followed.

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif

/// Removes `path` and everything below it without following symbolic links; returns the first
/// error's text, nil when all of it is gone.
@discardableResult
func removeTree(_ path: String) -> String? {
    let fd = retryingEINTR { open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
    guard fd >= 0 else { return errno == ENOENT ? nil : errnoText(errno) }
    var failure = removeContents(fd)
    if rmdir(path) != 0 && failure == nil { failure = errnoText(errno) }
    return failure
}

/// Empties the directory open as `fd` (and closes it).
private func removeContents(_ fd: Int32) -> String? {
    guard let dir = fdopendir(fd) else { close(fd); return errnoText(errno) }
    defer { closedir(dir) }
    var failure: String?
    var names: [(String, Bool)] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name == "." || name == ".." { continue }
        var isDirectory = entry.pointee.d_type == UInt8(DT_DIR)
        if entry.pointee.d_type == UInt8(DT_UNKNOWN) {
            var st = stat()
            isDirectory = fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        }
        names.append((name, isDirectory))
    }
    for (name, isDirectory) in names {
        if isDirectory {
            let sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if sub >= 0, let error = removeContents(sub), failure == nil { failure = error }
            if unlinkat(fd, name, AT_REMOVEDIR) != 0, failure == nil { failure = "\(name): " + errnoText(errno) }
        } else if unlinkat(fd, name, 0) != 0, errno != ENOENT, failure == nil {
            failure = "\(name): " + errnoText(errno)
        }
    }
    return failure
}
