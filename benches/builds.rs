//! Builds that scale out and stay fresh, in the sandbox:
//!
//! (k) base-image resolution, the time it adds to a run: three bases
//!     resolved (warm) against the one content-tag lookup a run made
//!     before bases counted;
//! (l) three components × two platforms on CodeBuild, one native build per
//!     platform, all started together: wall time against the sum of the six
//!     builds (what one after another takes) and the longest one. The
//!     sandbox's CodeBuild runs builds as timed phases, so this measures
//!     orchestration, not compilers;
//! (m) seed 002's scenario: backend (ECS), lambda (Lambda) and
//!     admin-frontend (ECS), one file changed in backend: fastdeploy builds
//!     and deploys backend only, against rebuilding and redeploying all
//!     three as `fast-build.sh all` does (`rebuild: true`, every image new).
//!
//! `cargo bench --bench builds`; `FASTDEPLOY_BENCH_ROUNDS` (default 3).

#[path = "support/common.rs"]
mod common;
#[path = "../tests/it/support/sandbox.rs"]
mod sandbox;

use std::fmt::Write as _;
use std::time::Instant;

use fastdeploy::image::bases::{self, BaseUse, Place};
use fastdeploy::image::registry::Client;
use sandbox::{CLUSTER, FullSandbox};

const COMMAND: &str = "cargo bench --bench builds";

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("builds: benchmark skipped (run it with `{COMMAND}`)");
        return;
    }
    let rounds = common::rounds(3);
    let mut rows = String::new();
    let mut md = String::new();
    resolution(&mut rows, &mut md);
    native(rounds, &mut rows, &mut md);
    seed_002(rounds, &mut rows, &mut md);
    common::write_results("builds", sandbox::repo_root(), &rows, &md);
}

/// (k): 20 warm resolutions of three bases against 20 content-tag lookups.
fn resolution(rows: &mut String, md: &mut String) {
    let sb = FullSandbox::start();
    let refs = [
        sb.base.clone(),
        sandbox::push_base_as(&sb, "python", "3.12-slim"),
        sandbox::push_base_as(&sb, "node", "22-alpine"),
    ];
    let uses: Vec<BaseUse> = refs
        .iter()
        .map(|r| BaseUse {
            reference: r.clone(),
            at: Place::From {
                line: 1,
                end_line: 1,
                flags: vec![],
                name: None,
            },
        })
        .collect();
    let auth = sb.registry.auth();
    let clock = fastdeploy::clock::Clock::REAL;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (resolve, lookup) = rt.block_on(async {
        let warm = bases::resolve(&uses, &auth, clock).await;
        assert_eq!(warm.resolved.len(), 3, "{:?}", warm.unresolved);
        let mut resolve = Vec::new();
        let mut lookup = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let r = bases::resolve(&uses, &auth, clock).await;
            resolve.push(t.elapsed().as_secs_f64());
            assert_eq!(r.resolved.len(), 3);
            // What every run already paid: a client and one content-tag HEAD.
            let t = Instant::now();
            let client = Client::new(&auth, clock);
            let found = client
                .manifest_digest("acme/shop", "content-0")
                .await
                .unwrap();
            lookup.push(t.elapsed().as_secs_f64());
            assert!(found.is_none());
        }
        (resolve, lookup)
    });
    let (r, l) = (common::median(resolve.clone()), common::median(lookup));
    let worst = resolve.iter().copied().fold(0.0, f64::max);
    let met = worst < 1.0;
    writeln!(
        rows,
        "| (k) | base-image resolution a run adds: three bases (`FROM`s on the run's registry, the run's credentials) resolved \
         concurrently to their digests, warm, 20 times | median {:.1} ms, worst {:.1} ms | one content-tag lookup (what a run \
         already made): median {:.1} ms | {:.1}x one lookup | under 1 s for three bases, warm | {} | `{COMMAND}` |",
        r * 1000.0,
        worst * 1000.0,
        l * 1000.0,
        r / l,
        if met { "met" } else { "**not met**" }
    )
    .unwrap();
    writeln!(
        md,
        "### (k) base-image resolution\n\nbenches/builds.rs: three bases pushed to the sandbox registry (the run's own, as \
         ECR bases are) are resolved by `bases::resolve` as a run does, after one warm-up, 20 times; each time against a \
         fresh client's content-tag HEAD, the lookup every run made before bases counted. The sandbox registry answers on \
         the loopback: against ECR or Docker Hub each look adds one round trip (the three run concurrently) and, for \
         Docker Hub, a token request.\n"
    )
    .unwrap();
}

const NATIVE_CONFIG: &str = "version: 1
components:
  backend:
    context: .
    repository: acme/backend
    platforms: [linux/amd64, linux/arm64]
  worker:
    context: .
    repository: acme/worker
    platforms: [linux/amd64, linux/arm64]
  admin:
    context: .
    repository: acme/admin
    platforms: [linux/amd64, linux/arm64]
";

/// (l): one round, a fresh sandbox; (wall seconds, build seconds each).
fn native_round(i: usize) -> (f64, Vec<f64>) {
    let mut sb = FullSandbox::start();
    // Each build "pushes" one of two images, by architecture; every
    // repository holds both, as six real builds would have pushed them.
    let mut exported = serde_json::Map::new();
    for (tag, env) in [
        ("fixture-amd64", "LINUX_CONTAINER"),
        ("fixture-arm64", "ARM_CONTAINER"),
    ] {
        if env == "ARM_CONTAINER" {
            sandbox::push_busybox_base(&sb.registry.host, sb.dir.path());
        }
        for repo in ["acme/backend", "acme/worker", "acme/admin"] {
            sandbox::push_base_as(&sb, repo, tag);
        }
        let digest = sandbox::registry_manifest_digest(&sb.registry, "acme/backend", tag);
        exported.insert(
            env.into(),
            serde_json::json!({"FASTDEPLOY_IMAGE_DIGEST": digest}),
        );
    }
    // Each of CodeBuild's phases takes 0.5 s.
    sb.moto.control(
        "codebuild/config",
        serde_json::json!({"phase_seconds": 0.5, "exported_by_environment": exported}),
    );
    sandbox::block_on(sandbox::create_codebuild_project(&sb.moto, "images"));
    std::fs::write(sb.workspace.join("fastdeploy.yml"), NATIVE_CONFIG).unwrap();
    sb.commit_change("app/pages/index.html", &format!("<h1>native {i}</h1>\n"));
    let mut cmd = sb.config_command();
    cmd.env("INPUT_BUILDER", "codebuild")
        .env("INPUT_CODEBUILD_PROJECT", "images");
    let started = Instant::now();
    let out = cmd.output().expect("fastdeploy starts");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "native round {i}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let images: serde_json::Value =
        serde_json::from_str(&sb.output("images").expect("the images output")).unwrap();
    let seconds: Vec<f64> = images
        .as_object()
        .unwrap()
        .values()
        .flat_map(|c| c["codebuild"].as_array().cloned().unwrap_or_default())
        .map(|b| b["seconds"].as_f64().unwrap())
        .collect();
    assert_eq!(seconds.len(), 6, "{images}");
    eprintln!("native round {i}: {wall:.2} s for builds of {seconds:?}");
    (wall, seconds)
}

fn native(rounds: usize, rows: &mut String, md: &mut String) {
    let results: Vec<(f64, Vec<f64>)> = (1..=rounds).map(native_round).collect();
    let wall = common::median(results.iter().map(|r| r.0).collect());
    let sum = common::median(results.iter().map(|r| r.1.iter().sum()).collect());
    let longest = common::median(
        results
            .iter()
            .map(|r| r.1.iter().copied().fold(0.0, f64::max))
            .collect(),
    );
    let met = wall < sum / 2.0;
    writeln!(
        rows,
        "| (l) | three components × two platforms on CodeBuild: one native build per platform (arm64 on ARM_CONTAINER), \
         started together, one index each; the sandbox's builds are timed phases (0.5 s each), so this measures \
         orchestration (median of {rounds} rounds) | run median {wall:.2} s; longest build {longest:.2} s | the six \
         builds one after another: {sum:.2} s | {:.2}x the sum ({:.1}x faster); {:.2}x the longest build | wall time \
         near the longest build, not the sum | {} | `{COMMAND}` |",
        wall / sum,
        sum / wall,
        wall / longest,
        if met { "met" } else { "**not met**" }
    )
    .unwrap();
    writeln!(
        md,
        "### (l) native multi-platform builds on CodeBuild\n\nbenches/builds.rs: three components with \
         `platforms: [linux/amd64, linux/arm64]`, `builder: codebuild`, `max-parallel` 3, no deploy. Each platform is \
         one CodeBuild build on its architecture; the sandbox's builds pass through CodeBuild's phases, 0.5 s each, \
         and export a digest the test pushed first for that architecture, so the index fastdeploy writes is checked by \
         the real registry. The baseline is the sum of the six builds' own durations (start to end, as CodeBuild \
         reports them): what building them one after another takes.\n\n| round | run | builds (s) |\n|---|---|---|"
    )
    .unwrap();
    for (i, (w, s)) in results.iter().enumerate() {
        let list: Vec<String> = s.iter().map(|x| format!("{x:.2}")).collect();
        writeln!(md, "| {} | {w:.2} s | {} |", i + 1, list.join(", ")).unwrap();
    }
    writeln!(md).unwrap();
}

const SEED_002: &str = "version: 1
components:
  backend:
    context: .
    repository: acme/shop
    service: shop
    container: [web]
  lambda:
    context: thumbs
    repository: acme/shop-thumbs
    function: shop-thumbs
  admin-frontend:
    context: admin
    repository: acme/shop-admin
    service: shop-admin
    container: [web]
environments:
  production:
    branches: [main]
    cluster: demo
";

/// The admin service, on its own family.
fn seed_admin(sb: &FullSandbox) {
    use aws_sdk_ecs::types::ContainerDefinition;
    sandbox::block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
        ecs.register_task_definition()
            .family("shop-admin")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("web")
                    .image("public.ecr.aws/nginx/nginx:1.27")
                    .essential(true)
                    .memory(128)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        ecs.create_service()
            .cluster(CLUSTER)
            .service_name("shop-admin")
            .task_definition("shop-admin:1")
            .desired_count(1)
            .send()
            .await
            .unwrap();
    });
}

/// One way: (wall seconds, components built, components deployed).
fn seed_way(sb: &mut FullSandbox, all: bool, tag: &str) -> (f64, usize, usize) {
    sb.commit_change("app/pages/index.html", &format!("<h1>{tag}</h1>\n"));
    let _ = std::fs::remove_file(sb.output_file());
    let mut cmd = sb.config_command();
    if all {
        cmd.env("INPUT_REBUILD", "true");
    }
    let started = Instant::now();
    let out = cmd.output().expect("fastdeploy starts");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{tag}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let images: serde_json::Value =
        serde_json::from_str(&sb.output("images").expect("the images output")).unwrap();
    let components = images.as_object().unwrap().values();
    let built = components
        .clone()
        .filter(|c| c["build-skipped"] == false)
        .count();
    let deployed = components.filter(|c| c["result"] == "success").count();
    (wall, built, deployed)
}

type Way = (f64, usize, usize);

fn seed_round(i: usize) -> (Way, Way) {
    let mut sb = FullSandbox::start_with_config();
    seed_admin(&sb);
    std::fs::create_dir_all(sb.workspace.join("admin")).unwrap();
    std::fs::write(
        sb.workspace.join("admin/Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nCOPY . /admin\n",
    )
    .unwrap();
    std::fs::write(sb.workspace.join("admin/index.html"), "<h1>admin</h1>\n").unwrap();
    std::fs::write(sb.workspace.join("fastdeploy.yml"), SEED_002).unwrap();
    // A first run puts every component's image in the registry.
    seed_way(&mut sb, true, &format!("first {i}"));
    let order = if i % 2 == 1 {
        [false, true]
    } else {
        [true, false]
    };
    let (mut ours, mut all) = ((0.0, 0, 0), (0.0, 0, 0));
    for everything in order {
        if everything {
            all = seed_way(&mut sb, true, &format!("all {i}"));
        } else {
            ours = seed_way(&mut sb, false, &format!("changed {i}"));
        }
    }
    eprintln!(
        "seed 002 round {i}: fastdeploy {:.2} s ({} built, {} deployed), all {:.2} s ({} built, {} deployed)",
        ours.0, ours.1, ours.2, all.0, all.1, all.2
    );
    (ours, all)
}

fn seed_002(rounds: usize, rows: &mut String, md: &mut String) {
    let results: Vec<(Way, Way)> = (1..=rounds).map(seed_round).collect();
    let ours = common::median(results.iter().map(|r| r.0.0).collect());
    let all = common::median(results.iter().map(|r| r.1.0).collect());
    let ours_built = results.iter().map(|r| r.0.1).max().unwrap_or(0);
    let all_built = results.iter().map(|r| r.1.1).min().unwrap_or(0);
    let met = ours < all && ours_built == 1;
    writeln!(
        rows,
        "| (m) | seed 002's scenario: backend (ECS), lambda (Lambda), admin-frontend (ECS), one file changed in backend, \
         start to verdict (median of {rounds} rounds) | median {ours:.2} s: {ours_built} built and deployed, the others' \
         content tags found | `fast-build.sh all` (`rebuild: true`: every component rebuilt and redeployed): median \
         {all:.2} s, {all_built} built | {:.2}x the time ({:.1}x faster) | only backend built and deployed, faster | {} \
         | `{COMMAND}` |",
        ours / all,
        all / ours,
        if met { "met" } else { "**not met**" }
    )
    .unwrap();
    writeln!(
        md,
        "### (m) seed 002: one component changed among three\n\nbenches/builds.rs: the shop with three components \
         (backend on the ECS service `shop`, lambda on the function `shop-thumbs`, admin-frontend on the ECS service \
         `shop-admin`), buildah, one fresh sandbox per round. After a first run, a commit changes one file of \
         backend; fastdeploy's run builds and deploys backend and finds the other two content tags, against the same \
         commit run with `rebuild: true`, which rebuilds and redeploys all three as `fast-build.sh all` does. The \
         order alternates.\n\n| round | fastdeploy | built | deployed | all | built | deployed |\n|---|---|---|---|---|---|---|"
    )
    .unwrap();
    for (i, (a, b)) in results.iter().enumerate() {
        writeln!(
            md,
            "| {} | {:.2} s | {} | {} | {:.2} s | {} | {} |",
            i + 1,
            a.0,
            a.1,
            a.2,
            b.0,
            b.1,
            b.2
        )
        .unwrap();
    }
    writeln!(md).unwrap();
}
