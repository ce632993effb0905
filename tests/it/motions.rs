//! Day-two motions through the binary against the full sandbox: `rollback`
//! puts back what served before the most recent deploy, `promote` deploys
//! what another environment serves, and neither builds anything.

use serde_json::Value;

use crate::support::run::{Ran, ecs_view, registry_digest, run, task_definition_arn};
use crate::support::sandbox::{CLUSTER, FAMILY, FUNCTION, FullSandbox, REPOSITORY, block_on};

/// The version alias `live` of the sandbox's function points at.
fn alias_version(sb: &FullSandbox) -> Option<String> {
    block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&sb.moto.sdk_config().await);
        let out = lambda
            .get_alias()
            .function_name(FUNCTION)
            .name("live")
            .send()
            .await
            .ok()?;
        out.function_version().map(str::to_string)
    })
}

/// The `images` output, by component.
fn images(sb: &FullSandbox) -> Value {
    serde_json::from_str(&sb.output("images").expect("the images output")).unwrap()
}

/// A run of the shop's config (`web` on ECS, `thumbs` on Lambda) with `env`.
fn shop(sb: &FullSandbox, env: &[(&str, &str)]) -> Ran {
    let _ = std::fs::remove_file(sb.output_file());
    let mut cmd = sb.config_command();
    cmd.envs(env.iter().copied());
    run(cmd)
}

/// Nothing is built by a motion: no build phase, no new tag in the registry.
fn built_nothing(ran: &Ran) {
    assert!(
        !ran.stdout.contains("::group::build") && !ran.stdout.contains("::group::check"),
        "{}",
        ran.log()
    );
}

#[test]
fn rollback_puts_back_what_served_before_the_last_deploy_without_building() {
    let mut sb = FullSandbox::start_with_config();
    let first = shop(&sb, &[]);
    assert_eq!(first.code, 0, "{}", first.log());
    let a = images(&sb);
    let a_web = a["web"]["image"].as_str().unwrap().to_string();
    assert_eq!(ecs_view(&sb).task_definition, task_definition_arn(2));
    assert_eq!(alias_version(&sb).as_deref(), Some("1"));

    sb.commit_change("app/pages/index.html", "<h1>B</h1>\n");
    sb.commit_change("thumbs/handler.sh", "#!/bin/sh\necho B\n");
    let second = shop(&sb, &[]);
    assert_eq!(second.code, 0, "{}", second.log());
    assert_eq!(ecs_view(&sb).task_definition, task_definition_arn(3));
    assert_eq!(alias_version(&sb).as_deref(), Some("2"));
    let tags_before = registry_digest(&sb, REPOSITORY, "production");

    let back = shop(&sb, &[("INPUT_COMMAND", "rollback")]);
    assert_eq!(back.code, 0, "{}", back.log());
    let first_line = back
        .stdout
        .lines()
        .find(|l| !l.starts_with("::"))
        .unwrap_or_default();
    assert!(
        first_line.starts_with("fastdeploy rollback: environment `production` gets back"),
        "the first line says what it does: {}",
        back.log()
    );
    built_nothing(&back);
    let ecs = ecs_view(&sb);
    assert_eq!(
        ecs.task_definition,
        task_definition_arn(2),
        "{}",
        back.log()
    );
    assert_eq!(ecs.images, vec![a_web.clone()]);
    assert_eq!(
        ecs.revisions.len(),
        3,
        "no revision registered: {:?}",
        ecs.revisions
    );
    assert_eq!(alias_version(&sb).as_deref(), Some("1"), "{}", back.log());
    assert_eq!(sb.output("result").as_deref(), Some("success"));
    let out = images(&sb);
    assert_eq!(out["web"]["image"], a_web.as_str(), "{out}");
    assert_eq!(out["thumbs"]["image"], a["thumbs"]["image"], "{out}");
    assert_eq!(
        registry_digest(&sb, REPOSITORY, "production"),
        tags_before,
        "nothing pushed or retagged"
    );
    assert!(
        back.stdout
            .contains(&format!("puts back {}", task_definition_arn(2)))
            && back.stdout.contains("service deployment"),
        "says what it found where: {}",
        back.log()
    );

    // Named explicitly: back to B's revision and version, one component at a time.
    let again = shop(
        &sb,
        &[
            ("INPUT_COMMAND", "rollback"),
            ("INPUT_COMPONENTS", "web"),
            ("INPUT_TO", "3"),
        ],
    );
    assert_eq!(again.code, 0, "{}", again.log());
    assert_eq!(ecs_view(&sb).task_definition, task_definition_arn(3));
    let again = shop(
        &sb,
        &[
            ("INPUT_COMMAND", "rollback"),
            ("INPUT_COMPONENTS", "thumbs"),
            ("INPUT_TO", "2"),
        ],
    );
    assert_eq!(again.code, 0, "{}", again.log());
    assert_eq!(alias_version(&sb).as_deref(), Some("2"));
}

#[test]
fn rollback_and_promote_refuse_what_is_not_there_before_changing_anything() {
    let sb = FullSandbox::start_with_config();
    // Nothing deployed by fastdeploy yet: the service's history has no
    // earlier revision, and the alias does not exist.
    let nothing = shop(&sb, &[("INPUT_COMMAND", "rollback")]);
    assert_eq!(nothing.code, 2, "{}", nothing.log());
    assert!(
        nothing.stderr.contains("nothing to roll back to"),
        "{}",
        nothing.log()
    );
    assert_eq!(
        ecs_view(&sb).task_definition,
        format!("{}", task_definition_arn(1))
    );

    let first = shop(&sb, &[]);
    assert_eq!(first.code, 0, "{}", first.log());
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("INPUT_COMMAND", "rollback"),
                ("INPUT_COMPONENTS", "web"),
                ("INPUT_TO", "other-family:1"),
            ],
            "`to` names a revision of task definition family `other-family`, but the service runs family `shop-web`",
        ),
        (
            &[
                ("INPUT_COMMAND", "rollback"),
                ("INPUT_COMPONENTS", "web"),
                ("INPUT_TO", "9"),
            ],
            "`to` names task definition shop-web:9, which does not exist",
        ),
        (
            &[
                ("INPUT_COMMAND", "rollback"),
                ("INPUT_COMPONENTS", "thumbs"),
                ("INPUT_TO", "7"),
            ],
            "version 7 of Lambda function shop-thumbs does not exist",
        ),
        (
            &[("INPUT_COMMAND", "rollback"), ("INPUT_TO", "2")],
            "`to` is 2, one revision, but 2 components deploy to `production`",
        ),
        (
            &[("INPUT_COMMAND", "promote")],
            "input `promote-from` is required with `command: promote`",
        ),
        (
            &[("INPUT_COMMAND", "promote"), ("INPUT_PROMOTE_FROM", "qa")],
            "unknown environment `qa`; `promote-from` names it",
        ),
        (
            &[("INPUT_COMMAND", "deploy"), ("INPUT_TO", "2")],
            "`to` is set, but `command` is not rollback",
        ),
        (
            &[("INPUT_COMMAND", "undo")],
            "input `command` is \"undo\", but it accepts deploy | rollback | promote",
        ),
    ];
    let td = ecs_view(&sb).task_definition;
    for (env, expected) in cases {
        let ran = shop(&sb, env);
        assert_eq!(ran.code, 2, "{env:?}: {}", ran.log());
        assert!(ran.stderr.contains(expected), "{expected}\n{}", ran.log());
        built_nothing(&ran);
    }
    assert_eq!(ecs_view(&sb).task_definition, td, "nothing changed");
    assert_eq!(alias_version(&sb).as_deref(), Some("1"));
}

#[test]
fn promote_deploys_the_digest_staging_serves_to_production_without_building() {
    let sb = FullSandbox::start_with_config();
    // Staging: another service of the same family in the same cluster.
    block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
        ecs.create_service()
            .cluster(CLUSTER)
            .service_name("shop-staging")
            .task_definition(format!("{FAMILY}:1"))
            .desired_count(1)
            .send()
            .await
            .unwrap();
    });
    let config = sb.workspace.join("fastdeploy.yml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}  staging:\n    branches: [develop]\n    cluster: demo\n    overrides:\n      web:\n        service: shop-staging\n"
        ),
    )
    .unwrap();
    let staged = shop(
        &sb,
        &[
            ("INPUT_ENVIRONMENT", "staging"),
            ("INPUT_COMPONENTS", "web"),
        ],
    );
    assert_eq!(staged.code, 0, "{}", staged.log());
    let staged_image = images(&sb)["web"]["image"].as_str().unwrap().to_string();
    let production_before = ecs_view(&sb).task_definition;

    let promoted = shop(
        &sb,
        &[
            ("INPUT_COMMAND", "promote"),
            ("INPUT_PROMOTE_FROM", "staging"),
            ("INPUT_ENVIRONMENT", "production"),
            ("INPUT_COMPONENTS", "web"),
        ],
    );
    assert_eq!(promoted.code, 0, "{}", promoted.log());
    built_nothing(&promoted);
    assert!(
        promoted.stdout.contains(&format!(
            "[web] staging serves {staged_image}: promoting it"
        )),
        "{}",
        promoted.log()
    );
    let ecs = ecs_view(&sb);
    assert_ne!(ecs.task_definition, production_before);
    assert_eq!(
        ecs.images,
        vec![staged_image.clone()],
        "production runs staging's digest"
    );
    assert_eq!(sb.output("result").as_deref(), Some("success"));
    assert_eq!(images(&sb)["web"]["image"], staged_image.as_str());

    // A component that deploys to the same target in both has nothing to promote.
    let thumbs = shop(
        &sb,
        &[
            ("INPUT_COMMAND", "promote"),
            ("INPUT_PROMOTE_FROM", "staging"),
            ("INPUT_ENVIRONMENT", "production"),
        ],
    );
    assert_eq!(thumbs.code, 2, "{}", thumbs.log());
    assert!(
        thumbs.stderr.contains(
            "component `thumbs` deploys to the same target in `staging` and `production`"
        ),
        "{}",
        thumbs.log()
    );
}
