//! Deploy targets. Each target kind has its own folder (`ecs`, `lambda`)
//! exposing the same contract; the executor `match`es on the plan's
//! [`crate::plan::TargetPlan`].

pub mod ecs;
