//! hardway's integration tests: one binary, a fresh temporary directory per test, real tools.

mod util;

mod bundle;
mod check;
mod datacenter;
mod encryption;
mod engine;
mod etcd_cluster;
mod etcd_pki;
mod export;
mod golden;
mod hosts;
mod operator;
mod pki;
mod project;
mod push;
mod recipe_errors;
mod renew;
mod seed;
mod store;
mod verify;
