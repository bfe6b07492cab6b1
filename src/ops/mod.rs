//! Operations on a planned and built cluster: they read recipes, graphs, the store and bundles, and never
//! build.

pub mod check;
