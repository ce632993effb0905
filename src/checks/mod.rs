//! Checks before anything is spent: the build context as the chosen builder
//! sends it ([`context`]) and the Dockerfile as BuildKit parses it
//! ([`dockerfile`]). Everything here is local and free; what it finds is the
//! user's to fix.

pub mod context;
pub mod dockerfile;

#[cfg(test)]
mod tests {
    /// `ignore-checks` is validated by settings against its own list; a check
    /// added here without it would be impossible to silence.
    #[test]
    fn ignore_checks_accepts_exactly_the_checks_that_exist() {
        let ids: Vec<&str> = super::dockerfile::RULES
            .iter()
            .map(|r| r.id)
            .chain(super::context::RULE_IDS.iter().copied())
            .chain(crate::deploy::ecs::doctor::RULES.iter().map(|(id, _)| *id))
            .collect();
        assert_eq!(ids, crate::settings::inputs::CHECK_IDS);
    }
}
