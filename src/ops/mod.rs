//! Operations on a planned and built cluster: they read recipes, graphs, the store and bundles. None of them
//! changes the user's store (`verify` rebuilds into a temporary one).

pub mod check;
pub mod lock;
pub mod push;
pub mod verify;
