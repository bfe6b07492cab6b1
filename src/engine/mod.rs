//! The generic engine: derivations and their hashes, the content-addressed store, the secret seed, the graph a
//! build realises, the scheduler, and the one [`Builder`] interface with its [`Registry`].
//!
//! Nothing here knows of Kubernetes: artifact modules (`crate::artifacts`) implement [`Builder`] and the
//! composition root (`crate::plan`) fills a [`Graph`]. No module of this layer imports from a higher one.

pub mod atomic;
pub mod builder;
pub mod derivation;
pub mod fetch;
pub mod graph;
pub mod scheduler;
pub mod seed;
pub mod source;
pub mod store;

pub use builder::{BuildContext, Builder, BuilderError, Registry};
pub use graph::{Graph, Node, Root};
