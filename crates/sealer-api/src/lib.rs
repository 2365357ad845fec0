//! The wire contract between sealing workers and the sector manager: the `Venus.*`
//! JSON-RPC methods, their parameters and results, exactly as damocles writes them.
//!
//! The manager serves these types and the worker calls with them, so an unmodified
//! damocles-worker can seal against our manager and our worker against a damocles
//! manager. The encoding follows Go's `encoding/json` as the reference produces it:
//! PascalCase keys (with the reference's few exceptions, such as `Id` and `PieceCID`),
//! 32-byte commitments as arrays of 32 numbers, other byte strings as standard base64,
//! CIDs as `{"/": "…"}`, enums as integers, and `null` for "nothing now".
//!
//! - [`types`]: every parameter and result.
//! - [`methods`]: the method names and the error codes with a meaning on the wire.

pub mod methods;
pub mod types;

pub use methods::*;
pub use types::*;
