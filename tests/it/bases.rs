//! Base images in the content tag: a base re-pushed under the same tag
//! rebuilds a component whose files did not change, the build uses the
//! digest that was resolved, and the run says why it rebuilt. Against the
//! sandbox registry (the base is `<registry>/base:1`, pushed by buildah).

use fastdeploy::image::bases::{self, BaseUse, Place};
use fastdeploy::image::registry::RegistryAuth;

use crate::support::run::{image_output, registry_digest, run, slack_messages};
use crate::support::sandbox::{
    ECR_PASSWORD, ECR_USER, FullSandbox, REPOSITORY, block_on, push_busybox_base,
};

#[test]
fn a_base_re_pushed_under_the_same_tag_rebuilds_an_unchanged_component_and_says_why() {
    let sb = FullSandbox::start();
    let base_repo = "base";
    let first_base = registry_digest(&sb, base_repo, "1").unwrap();
    let first = run(sb.command());
    assert_eq!(first.code, 0, "{}", first.log());
    let app = image_output(&sb);
    assert_eq!(
        app["bases"],
        serde_json::json!([{"reference": sb.base, "digest": first_base}]),
        "{app}"
    );
    assert!(
        first
            .stdout
            .contains(&format!("FROM {}@{first_base}", sb.base)),
        "the build used the base by digest:\n{}",
        first.log()
    );
    let first_digest = sb.output("digest").unwrap();

    // The base is patched and pushed under the same tag; nothing in the
    // repository changes, and the same commit runs again.
    push_busybox_base(&sb.registry.host, sb.dir.path());
    let patched = registry_digest(&sb, base_repo, "1").unwrap();
    assert_ne!(patched, first_base);
    std::fs::remove_file(sb.output_file()).unwrap();
    let second = run(sb.command());
    assert_eq!(second.code, 0, "{}", second.log());
    let app = image_output(&sb);
    assert_eq!(app["build-skipped"], false, "{app}\n{}", second.log());
    let why = format!("base `{}` moved to {patched}", sb.base);
    assert_eq!(app["rebuilt-because"], why.as_str(), "{app}");
    assert!(
        second.stdout.contains(&format!("rebuilding: {why}"))
            && second
                .stdout
                .contains(&format!("FROM {}@{patched}", sb.base)),
        "{}",
        second.log()
    );
    let second_digest = sb.output("digest").unwrap();
    assert_ne!(second_digest, first_digest, "a new image on the new base");
    let summary = sb.summary();
    assert!(
        summary.contains(&format!(
            "- `app` rebuilt: base `{}` moved to {patched}",
            sb.base
        )),
        "{summary}"
    );
    let slack = slack_messages(&sb).last().cloned().unwrap_or_default();
    assert!(slack.to_string().contains("rebuilt: base"), "{slack}");

    // Unchanged files on an unchanged base: the content tag is found.
    std::fs::remove_file(sb.output_file()).unwrap();
    let third = run(sb.command());
    assert_eq!(third.code, 0, "{}", third.log());
    let app = image_output(&sb);
    assert_eq!(app["build-skipped"], true, "{app}\n{}", third.log());
    assert_eq!(sb.output("digest").as_deref(), Some(second_digest.as_str()));

    // `rebuild: true` builds whatever the tag says, and says so.
    std::fs::remove_file(sb.output_file()).unwrap();
    let mut forced = sb.command();
    forced.env("INPUT_REBUILD", "true");
    let fourth = run(forced);
    assert_eq!(fourth.code, 0, "{}", fourth.log());
    let app = image_output(&sb);
    assert_eq!(app["build-skipped"], false, "{app}\n{}", fourth.log());
    assert_eq!(app["rebuilt-because"], "`rebuild` is true", "{app}");
}

fn from_use(reference: &str) -> BaseUse {
    BaseUse {
        reference: reference.to_string(),
        at: Place::From {
            line: 1,
            end_line: 1,
            flags: vec![],
            name: None,
        },
    }
}

#[test]
fn bases_resolve_with_the_run_credentials_and_unreachable_ones_are_named() {
    let sb = FullSandbox::start();
    let auth = |user: &str, password: &str| RegistryAuth {
        host: sb.registry.host.clone(),
        username: user.into(),
        password: password.to_string().into(),
        insecure: true,
    };
    let clock = fastdeploy::clock::Clock::scaled(0.01);
    let missing = format!("{}/base:nope", sb.registry.host);
    let uses = [
        from_use(&sb.base),
        from_use(&sb.base),
        from_use(&missing),
        from_use("127.0.0.1:1/nothing:1"),
    ];
    let found = block_on(bases::resolve(&uses, &auth(ECR_USER, ECR_PASSWORD), clock));
    assert_eq!(
        found.resolved,
        vec![bases::Resolved {
            reference: sb.base.clone(),
            digest: registry_digest(&sb, "base", "1").unwrap(),
        }],
        "each base once"
    );
    assert_eq!(found.unresolved.len(), 2, "{:?}", found.unresolved);
    assert!(
        found.unresolved[0].contains(&format!(
            "base image `{missing}` is not in {}",
            sb.registry.host
        )),
        "{:?}",
        found.unresolved
    );
    assert!(
        found.unresolved[1].starts_with("base image `127.0.0.1:1/nothing:1` cannot be resolved"),
        "{:?}",
        found.unresolved
    );

    // Wrong credentials: the registry's refusal is the reason given.
    let refused = block_on(bases::resolve(&uses[..1], &auth(ECR_USER, "wrong"), clock));
    assert!(refused.resolved.is_empty());
    assert!(
        refused.unresolved[0].contains("401"),
        "{:?}",
        refused.unresolved
    );
    let _ = REPOSITORY;
}
