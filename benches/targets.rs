//! (j) One component with three targets against three single-target
//! components built from the same Dockerfile, in the same sandbox: the
//! shop's three ECS services (`shop`, `shop-worker`, `shop-cron`, each its
//! own task definition family) run one image. With `targets:` the image is
//! checked and built once and every service gets its digest; declared as
//! three components (what a team does without `targets:`), the same
//! Dockerfile is checked and built three times, side by side. Each round
//! commits a change first, so both ways build; the order alternates.
//!
//! `cargo bench --bench targets`; `FASTDEPLOY_BENCH_ROUNDS` (default 3).

#[path = "support/common.rs"]
mod common;
#[path = "../tests/it/support/sandbox.rs"]
mod sandbox;

use std::fmt::Write as _;
use std::time::Instant;

use sandbox::{CLUSTER, FullSandbox};

const COMMAND: &str = "cargo bench --bench targets";
const SERVICES: [&str; 3] = ["shop", "shop-worker", "shop-cron"];

/// One component, three targets.
const ONE: &str = "version: 1
components:
  web:
    context: .
    repository: acme/shop
    container: [web]
    targets:
      - service: shop
      - service: shop-worker
      - service: shop-cron
environments:
  production:
    branches: [main]
    cluster: demo
";

/// Three components, one service each, the same context and Dockerfile.
const THREE: &str = "version: 1
components:
  web:
    context: .
    repository: acme/shop
    container: [web]
    service: shop
  worker:
    context: .
    repository: acme/shop-worker
    container: [web]
    service: shop-worker
  cron:
    context: .
    repository: acme/shop-cron
    container: [web]
    service: shop-cron
environments:
  production:
    branches: [main]
    cluster: demo
";

/// The worker and cron services, each on its own family running the
/// shop's container.
fn seed(sb: &FullSandbox) {
    use aws_sdk_ecs::types::{ContainerDefinition, PortMapping};
    sandbox::block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
        for service in &SERVICES[1..] {
            let web = ContainerDefinition::builder()
                .name("web")
                .image("public.ecr.aws/nginx/nginx:1.27")
                .essential(true)
                .memory(128)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .build();
            ecs.register_task_definition()
                .family(*service)
                .container_definitions(web)
                .send()
                .await
                .unwrap();
            ecs.create_service()
                .cluster(CLUSTER)
                .service_name(*service)
                .task_definition(format!("{service}:1"))
                .desired_count(1)
                .send()
                .await
                .unwrap();
        }
    });
}

/// The image each service runs now.
fn images(sb: &FullSandbox) -> Vec<String> {
    sandbox::block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
        let mut out = Vec::new();
        for service in SERVICES {
            let s = ecs
                .describe_services()
                .cluster(CLUSTER)
                .services(service)
                .send()
                .await
                .unwrap();
            let td = s.services()[0].task_definition().unwrap().to_string();
            let d = ecs
                .describe_task_definition()
                .task_definition(td)
                .send()
                .await
                .unwrap();
            let image = d.task_definition().unwrap().container_definitions()[0]
                .image()
                .unwrap()
                .to_string();
            out.push(image);
        }
        out
    })
}

/// One way: the config written and committed with a change, then a run;
/// (wall seconds, builds made, distinct digests serving).
fn way(sb: &mut FullSandbox, config: &str, tag: &str) -> (f64, usize, usize) {
    std::fs::write(sb.workspace.join("fastdeploy.yml"), config).unwrap();
    sb.commit_change("app/pages/index.html", &format!("<h1>{tag}</h1>\n"));
    let _ = std::fs::remove_file(sb.output_file());
    let started = Instant::now();
    let out = sb.config_command().output().expect("fastdeploy starts");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{tag} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let images: serde_json::Value =
        serde_json::from_str(&sb.output("images").expect("the images output")).unwrap();
    let builds = images
        .as_object()
        .unwrap()
        .values()
        .filter(|c| c["build-skipped"] == false && c["digest"].is_string())
        .count();
    let mut serving = self::images(sb);
    serving.sort();
    serving.dedup();
    (wall, builds, serving.len())
}

type Way = (f64, usize, usize);

/// One round in a fresh sandbox: both ways, in alternating order.
fn round(i: usize) -> (Way, Way) {
    let mut sb = FullSandbox::start();
    seed(&sb);
    let (mut one, mut three) = ((0.0, 0, 0), (0.0, 0, 0));
    let order = if i % 2 == 1 {
        [true, false]
    } else {
        [false, true]
    };
    for targets in order {
        if targets {
            one = way(&mut sb, ONE, &format!("one {i}"));
        } else {
            three = way(&mut sb, THREE, &format!("three {i}"));
        }
    }
    eprintln!(
        "round {i}: targets {:.2} s ({} build), three components {:.2} s ({} builds)",
        one.0, one.1, three.0, three.1
    );
    (one, three)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("targets: benchmark skipped (run it with `{COMMAND}`)");
        return;
    }
    let rounds = common::rounds(3);
    let results: Vec<(Way, Way)> = (1..=rounds).map(round).collect();
    let one = common::median(results.iter().map(|r| r.0.0).collect());
    let three = common::median(results.iter().map(|r| r.1.0).collect());
    let one_builds = results.iter().map(|r| r.0.1).max().unwrap_or(0);
    let three_builds = results.iter().map(|r| r.1.1).min().unwrap_or(0);
    let one_digest = results.iter().all(|r| r.0.2 == 1);
    let met = one < three && one_builds == 1 && one_digest;
    let rows = format!(
        "| (j) | one component with three targets (three ECS services, one image) vs three single-target components built from \
         the same Dockerfile: a first run after a change, start to verdict (median of {rounds} rounds) \
         | median {one:.2} s, {one_builds} build, {} serving | median {three:.2} s, {three_builds} builds \
         | {:.2}x the time ({:.1}x faster), {one_builds} build instead of {three_builds} \
         | one build, every service on its digest, faster | {} | `{COMMAND}` |\n",
        if one_digest {
            "one digest"
        } else {
            "**several digests**"
        },
        one / three,
        three / one,
        if met { "met" } else { "**not met**" }
    );
    let mut md = String::new();
    writeln!(
        md,
        "### (j) one component with three targets against three components\n"
    )
    .unwrap();
    writeln!(
        md,
        "benches/targets.rs: the shop's three ECS services (`shop`, `shop-worker`, `shop-cron`, each its own task \
         definition family) run one image. Declared once with `targets:`, the image is checked and built once; declared \
         as three components with the same context and Dockerfile, it is checked and built three times side by side \
         (`max-parallel` 3). Each way commits a change first, so both build; a fresh sandbox per round, the order \
         alternating.\n"
    )
    .unwrap();
    writeln!(
        md,
        "| round | `targets:` | builds | three components | builds |\n|---|---|---|---|---|"
    )
    .unwrap();
    for (i, (a, b)) in results.iter().enumerate() {
        writeln!(
            md,
            "| {} | {:.2} s | {} | {:.2} s | {} |",
            i + 1,
            a.0,
            a.1,
            b.0,
            b.1
        )
        .unwrap();
    }
    common::write_results("targets", sandbox::repo_root(), &rows, &md);
}
