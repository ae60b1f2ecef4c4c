//! The shared vocabulary every other module speaks, and nothing else: the
//! journal's records and events, blob references, templates and scopes,
//! durations, diagnostics, typed failures. It imports nothing from the crate,
//! so any module may use it without creating a cycle.
//!
//! - [`record`]: the bundle header and the journal's records and events.
//! - [`blob`]: [`BlobSink`] and [`BlobRef`], how evidence bodies are stored.
//! - [`template`]: `{{...}}` templates and the [`Scope`](template::Scope) they render in.
//! - [`duration`]: human durations (`"5s"`).
//! - [`numeric`]: numbers that may be written as templates (`port = "{{port}}"`).
//! - [`failure`]: typed failures: [`FailureClass`] and [`Failure`].
//! - [`diagnostics`]: problems with a source position, rendered like a compiler.
//! - [`placeholder`]: telling a placeholder from a real secret value.
//! - [`cut`]: shortening text for display, always marked with `…`.
//! - [`decimal`]: floats with a fixed number of decimals, as `{:.N}` writes them.
//! - [`repeats`]: repeated ids among a million, on 4-byte hashes.
//! - [`parallel`]: independent jobs on up to one thread per core.

pub mod alloc;
pub mod blob;
pub mod cut;
pub mod decimal;
pub mod diagnostics;
pub mod duration;
pub mod failure;
pub mod numeric;
pub mod parallel;
pub mod placeholder;
pub mod record;
pub mod repeats;
pub mod template;

pub use blob::{BlobRef, BlobSink};
pub use failure::{Failure, FailureClass, FailureRecord};
