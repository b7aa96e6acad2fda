// Wrappers.swift: THE list of allocation wrappers, in one place. A frame inside a wrapper is not
// where a leak "comes from"; `--by frame` attributes a block to the first frame outside them.
//
// Two kinds of rule:
// - wrapper MODULES, matched on the module's file name. They work without symbol names, so
//   `memdir list` (which does not run addr2line) uses only these.
// - wrapper FUNCTIONS, matched on the demangled function name after `memdir resolve`. They catch
//   wrappers that were inlined into, or linked into, the program itself (std::vector growth,
//   strdup called from a static libc, Swift runtime entry points...).
// Patterns are exact names, or globs where `*` matches any run of characters.
// `--wrapper NAME` adds function patterns (`foo`, `foo*`, `ns::*::alloc`).

public struct WrapperRules: Sendable {
    /// Module file names (basename) whose frames are allocation wrappers.
    public static let wrapperModules: [String] = [
        "libc.so*",          // glibc: strdup, fopen, getline, asprintf, stdio buffers...
        "libstdc++.so*",     // operator new, std::allocator, containers' out-of-line growth
        "libswiftCore.so",   // swift_allocObject, swift_slowAlloc, array/string storage
        "libgcc_s.so*",      // unwinder allocations (exception objects)
        "libmemtrack.so",    // the interposer itself, should it ever appear in a stack
        "ld-linux*.so*",     // the dynamic loader: link maps for dlopen, TLS for pthread_create
    ]

    /// Function names (demangled) that only allocate on behalf of their caller.
    public static let wrapperFunctions: [String] = [
        // glibc: functions that return memory the caller must free.
        "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
        "memalign", "valloc", "pvalloc", "__libc_*",
        "strdup", "strndup", "__strdup", "__strndup", "__GI___strdup", "__GI___strndup", "wcsdup",
        "asprintf", "vasprintf", "__asprintf*", "__vasprintf*", "___asprintf*",
        "getline", "getdelim", "__getdelim", "_IO_getdelim",
        "fopen", "fopen64", "_IO_new_fopen", "__fopen_internal", "_IO_fopen*",
        "fdopen", "_IO_new_fdopen", "_IO_fdopen*", "freopen*", "fmemopen", "tmpfile*",
        "open_memstream", "open_wmemstream",
        "_IO_file_doallocate", "_IO_doallocbuf", "_IO_*alloc*",
        "realpath", "__realpath", "canonicalize_file_name", "get_current_dir_name", "getcwd",
        "tempnam", "scandir*", "glob", "glob64", "backtrace_symbols",
        "newlocale", "setlocale", "regcomp", "re_compile_internal", "__res_*", "getaddrinfo",
        "xmalloc", "xcalloc", "xrealloc", "xstrdup", "xstrndup",
        // libstdc++: operator new and the allocator/container machinery.
        "operator new*", "operator new[]*",
        "std::allocator*", "std::allocator_traits*",
        "__gnu_cxx::new_allocator*", "std::__new_allocator*", "__gnu_cxx::__alloc_traits*",
        "std::_Vector_base*", "std::vector<*>::_M_*", "std::vector<*>::push_back*",
        "std::vector<*>::emplace_back*", "std::vector<*>::reserve*", "std::vector<*>::resize*",
        "std::vector<*>::vector*", "std::vector<*>::operator=*",
        "std::__cxx11::basic_string*", "std::basic_string*", "std::__cxx11::to_string*",
        "std::__cxx11::list<*>::_M_*", "std::__cxx11::_List_base*", "std::deque<*>::_M_*",
        "std::_Deque_base*", "std::_Rb_tree<*>::_M_*", "std::_Hashtable<*>::_M_*",
        "std::__detail::_Hashtable_alloc*", "std::__detail::_Map_base*",
        "std::make_shared*", "std::allocate_shared*", "std::__shared_count*",
        "std::__allocate_guarded*", "std::make_unique*", "std::__detail::__variant::*",
        // Swift runtime and stdlib storage.
        "swift_slowAlloc", "swift_allocObject", "swift_allocBox", "swift_allocEmptyBox",
        "swift_allocError", "swift_bufferAllocate", "swift::swift_slowAlloc*",
        "_swift_allocObject_*", "swift_initStackObject",
        // The compiler-generated allocating initializer (`Foo.__allocating_init()`, line 0)
        // calls swift_allocObject for the user's `Foo()`: the caller is the user's line.
        "*.__allocating_init*",
        "Swift._allocateUninitializedArray*", "Swift._ContiguousArrayBuffer*",
        "Swift.ManagedBuffer*", "Swift._StringGuts*", "Swift._StringObject*",
        "Swift.__StringStorage*", "Swift._ArrayBuffer*", "Swift._DictionaryStorage*",
        "Swift._SetStorage*", "Swift._NativeDictionary*", "Swift._NativeSet*",
    ]

    public var extraFunctions: [String]

    public init(extraFunctions: [String] = []) { self.extraFunctions = extraFunctions }

    public func isWrapperModule(path: String) -> Bool {
        let name = baseName(path)
        return Self.wrapperModules.contains { globMatch($0, name) }
    }

    public func isWrapperFunction(_ name: String) -> Bool {
        Self.wrapperFunctions.contains { globMatch($0, name) }
            || extraFunctions.contains { globMatch($0, name) }
    }
}

/// Glob match where `*` matches any run of characters and everything else is literal
/// (so `operator new[]` needs no escaping). With `anyOne`, `?` matches any one character
/// (valgrind's and LSan's suppression patterns).
public func globMatch(_ pattern: String, _ text: String, questionMarkMatchesAny anyOne: Bool = false) -> Bool {
    let p = Array(pattern.utf8), t = Array(text.utf8)
    var pi = 0, ti = 0, starP = -1, starT = 0
    while ti < t.count {
        if pi < p.count && p[pi] == UInt8(ascii: "*") {
            starP = pi; starT = ti; pi += 1
        } else if pi < p.count && (p[pi] == t[ti] || (anyOne && p[pi] == UInt8(ascii: "?"))) {
            pi += 1; ti += 1
        } else if starP >= 0 {
            pi = starP + 1; starT += 1; ti = starT
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
}
