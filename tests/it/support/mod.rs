//! What the integration tests share, apart from the tests themselves: the
//! sandbox (moto, the registry, receivers, dockerd), running the binary as
//! the runner does, driving a deploy target through the library, and
//! generated build-context trees.

pub mod deploy;
pub mod run;
pub mod sandbox;
pub mod trees;
pub mod triggers;
