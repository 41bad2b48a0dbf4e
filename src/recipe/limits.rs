//! What one recipe may use: operations before it counts as runaway, and the size of one value.
//!
//! The engine sets these limits and the error module words what happens when a script meets
//! one; both read them here, so neither has to import the other.

/// Operations a script may perform before it is considered runaway. Blocking calls (`run`,
/// `local`) cost nothing here, so only a script that spins in Rust-free loops reaches it.
pub const MAX_OPERATIONS: u64 = 50_000_000;
pub const RUNAWAY: &str =
    "script stopped after 50000000 operations without finishing (an endless loop?)";

/// The most text one script value may hold, in bytes: a string, or all the strings inside one
/// array or map together. A runaway `s += s` otherwise doubles until the allocator aborts the
/// whole controller (no summary, locks left on hosts); this is far above what a recipe handles
/// on purpose, and above what `run` returns (its output is kept up to 64 MiB per stream).
pub const MAX_STRING_BYTES: usize = 256 * 1024 * 1024;
/// The most items in one array (nested arrays count together), and bytes in one BLOB.
pub const MAX_ARRAY_ITEMS: usize = 10_000_000;
/// The most entries in one map (nested maps count together).
pub const MAX_MAP_ENTRIES: usize = 1_000_000;

/// The message for a value that outgrew a limit; `what` is the kind Rhai names
/// (`Length of string`, `Size of array/BLOB`, `Size of object map`, `Size of BLOB`).
pub fn too_large(what: &str) -> String {
    let (value, limit) = if what.contains("string") {
        ("a string", format!("{} MiB", MAX_STRING_BYTES >> 20))
    } else if what.contains("map") {
        ("a map", format!("{MAX_MAP_ENTRIES} entries"))
    } else if !what.contains("array") {
        ("a BLOB", format!("{MAX_ARRAY_ITEMS} bytes"))
    } else {
        ("an array", format!("{MAX_ARRAY_ITEMS} items"))
    };
    format!("{value} grew beyond {limit}, the most one value may hold in a recipe")
}
