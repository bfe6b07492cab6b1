//! Operations on a planned and built cluster: they read recipes, graphs, the store and bundles. None of them
//! changes the user's store (`verify` rebuilds into a temporary one), except `import`, which adds to it only
//! through `Store::substitute`, after the whole archive has been checked.

pub mod check;
pub mod export;
pub mod import;
pub mod lock;
pub mod push;
pub mod verify;
