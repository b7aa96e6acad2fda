// annotated_swift.swift: memtrack.h from Swift (imported as a bridging header). A 71-byte block
// allocated while paused is not reported; a 72-byte one after resume is. Prints "loaded N".
#if canImport(Glibc)
import Glibc
#endif

let loaded = memtrack_loaded() != 0
if loaded { memtrack_pause() }
let hidden = malloc(71)
if loaded { memtrack_resume() }
let shown = malloc(72) // SWIFT-MALLOC
print("loaded \(loaded ? 1 : 0)", hidden != nil && shown != nil)
