//! Elastic Beanstalk: what `bundle: image` saves against `bundle: source`,
//! in bytes uploaded and in time to a verdict, deploying the same component
//! to the same sandbox environment.
//!
//! The component is a generated tree shaped like the context scan's (the
//! same seeded generator's kind of Python and Node repository, scaled
//! down): a `.venv` and `node_modules` of many small files and `.git`
//! packfiles, all in `.dockerignore`; the app's modules, a web front end and
//! data sets the image copies, which is what a source bundle must carry.
//! Each run deploys a new version (a new digest; for the source bundle a
//! changed file), so nothing is reused.
//!
//! Time to a verdict is fastdeploy's `deploy` from its start to its result:
//! bundle, upload, application version, update, events, health. EB's steps
//! take 0.2 s in the sandbox, and the sandbox does not build the image on
//! the instances as EB does for a source bundle, so the measured gap is the
//! client's side only: on EB the source bundle also pays a `docker build`
//! on every instance.
//!
//!     cargo bench --bench beanstalk_bundle
//!     FASTDEPLOY_BENCH_EB_MB=50 cargo bench --bench beanstalk_bundle   # quicker
//!
//! Writes target/bench-results/beanstalk_bundle.rows.md (its row of
//! docs/benchmarks.md) and beanstalk_bundle.md, and prints the row.

#[path = "../tests/it/support/sandbox.rs"]
mod sandbox;
#[path = "../tests/it/support/deploy.rs"]
mod support_deploy;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use aws_sdk_elasticbeanstalk::types::S3Location;
use fastdeploy::gha::Actions;
use fastdeploy::outcome::RunResult;
use fastdeploy::plan::{BeanstalkPlan, BuildPlan, ComponentPlan, WatchPlan};
use fastdeploy::settings::config::Bundle;

const SIZE_ENV: &str = "FASTDEPLOY_BENCH_EB_MB";
/// The whole tree; what the image copies (and a source bundle carries) is
/// about a quarter of it.
const DEFAULT_MB: u64 = 400;
const TREE_VERSION: &str = "2";
const RUNS: usize = 3;
const STEP_SECONDS: f64 = 0.2;
const DOCKERIGNORE: &str = ".git\n.venv\nnode_modules\n**/__pycache__\n*.log\n";
/// The target: an image bundle stays a few kilobytes whatever the image.
const IMAGE_BUNDLE_LIMIT: u64 = 64_000;

struct Measured {
    seconds: Vec<f64>,
    bytes: Vec<u64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "beanstalk_bundle: benchmark skipped (run it with `cargo bench --bench beanstalk_bundle`)"
        );
        return Ok(());
    }
    let mb: u64 = match std::env::var(SIZE_ENV) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{SIZE_ENV}={v:?} is not a whole number of MiB"))?,
        Err(_) => DEFAULT_MB,
    };
    anyhow::ensure!(mb >= 10, "{SIZE_ENV} must be at least 10");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let root = target.join("bench-eb").join(format!("{mb}mb"));
    let (total, shipped) = tokio::task::block_in_place(|| ensure_tree(&root, mb))?;
    println!(
        "tree: {} in all, {} of it in the image (and in a source bundle)",
        fastdeploy::units::bytes(total),
        fastdeploy::units::bytes(shipped)
    );

    let moto = tokio::task::block_in_place(sandbox::Moto::start);
    tokio::task::block_in_place(|| {
        moto.control(
            "beanstalk/config",
            serde_json::json!({"step_seconds": STEP_SECONDS}),
        )
    });
    let sdk = moto.sdk_config().await;
    let eb = aws_sdk_elasticbeanstalk::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    seed(&eb, &s3).await?;

    let build = BuildPlan {
        context: root.clone(),
        dockerfile: root.join("Dockerfile"),
        target: None,
        build_args: Default::default(),
        platforms: vec![],
        repository: "acme/shop".into(),
        tags: vec![],
        labels: Default::default(),
        cache: None,
        push: true,
        secrets: vec![],
    };
    let component = ComponentPlan {
        name: "web".into(),
        build,
        deploy: None,
        also: vec![],
        no_deploy_reason: None,
        promote_from: None,
        order: vec![],
    };
    let mut results = Vec::new();
    let mut n = 0u32;
    for bundle in [Bundle::Image, Bundle::Source] {
        let plan = BeanstalkPlan {
            application: "shop".into(),
            environment: "shop-prod".into(),
            bundle,
            allow_yellow: false,
            ports: vec![],
            keep_revisions: None,
            config: Default::default(),
            watch: WatchPlan {
                wait_seconds: 1800,
                poll_seconds: 5.0,
                rollback: true,
                smoke: None,
                alarms: None,
            },
            swap: None,
        };
        let mut m = Measured {
            seconds: Vec::new(),
            bytes: Vec::new(),
        };
        for _ in 0..RUNS {
            n += 1;
            // A new version each time: a new digest, and a changed file.
            std::fs::write(root.join("app/version.txt"), format!("build {n}\n"))?;
            let digest = format!("sha256:{:064x}", n);
            let uri = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/shop@{digest}");
            // Its log is kept, not printed: the runs' lines below say enough.
            let (_log, actions) = Actions::capture();
            let started = Instant::now();
            let deployer = support_deploy::Deployer::new(&sdk, None, 0.1).with_actions(actions);
            let image = support_deploy::image_of(&uri);
            let out = deployer.beanstalk(&plan, &component, &image).await;
            let seconds = started.elapsed().as_secs_f64();
            anyhow::ensure!(
                out.result == RunResult::Success,
                "{} deploy: {:?}",
                bundle.as_str(),
                out.failure
            );
            let label = out.report.revision.clone().unwrap_or_default();
            m.bytes.push(uploaded(&eb, &s3, &label).await?);
            m.seconds.push(seconds);
            println!(
                "  bundle: {} run {n}: {} uploaded, verdict in {seconds:.2} s",
                bundle.as_str(),
                fastdeploy::units::bytes(*m.bytes.last().unwrap())
            );
        }
        results.push(m);
    }
    let (image, source) = (&results[0], &results[1]);
    let (image_s, source_s) = (
        median(image.seconds.clone()),
        median(source.seconds.clone()),
    );
    let (image_b, source_b) = (
        image.bytes[image.bytes.len() / 2],
        source.bytes[source.bytes.len() / 2],
    );
    let met = image_b <= IMAGE_BUNDLE_LIMIT && image_s <= source_s;
    let row = format!(
        "| (g) | Elastic Beanstalk: bytes uploaded and time to a verdict, `bundle: image` vs `bundle: source` ({} tree shaped like (a)'s, {} of it in the image; median of {RUNS} deploys each, EB's steps 0.2 s, no instance-side build) \
         | image: {} uploaded, verdict in {image_s:.2} s | source: {} uploaded, verdict in {source_s:.2} s | {:.0}x fewer bytes, {:.1}x sooner \
         | image bundle under {} and no slower | {} | `cargo bench --bench beanstalk_bundle` |\n",
        fastdeploy::units::bytes(total),
        fastdeploy::units::bytes(shipped),
        fastdeploy::units::bytes(image_b),
        fastdeploy::units::bytes(source_b),
        source_b as f64 / image_b.max(1) as f64,
        source_s / image_s.max(1e-9),
        fastdeploy::units::bytes(IMAGE_BUNDLE_LIMIT),
        if met { "met" } else { "**not met**" },
    );
    let results_dir = target.join("bench-results");
    std::fs::create_dir_all(&results_dir)?;
    std::fs::write(results_dir.join("beanstalk_bundle.rows.md"), &row)?;
    let runs = |m: &Measured| {
        m.seconds
            .iter()
            .zip(&m.bytes)
            .map(|(s, b)| format!("{} in {s:.2} s", fastdeploy::units::bytes(*b)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    std::fs::write(
        results_dir.join("beanstalk_bundle.md"),
        format!(
            "### (g) Elastic Beanstalk bundles\n\nbenches/beanstalk_bundle.rs: the same component deployed {RUNS} times with \
             `bundle: image` and {RUNS} times with `bundle: source` to one sandbox environment.\n\n- image: {}\n- source: {}\n",
            runs(image),
            runs(source)
        ),
    )?;
    print!("{row}");
    Ok(())
}

/// Application `shop`, environment `shop-prod` on the Docker platform.
async fn seed(
    eb: &aws_sdk_elasticbeanstalk::Client,
    s3: &aws_sdk_s3::Client,
) -> anyhow::Result<()> {
    eb.create_application()
        .application_name("shop")
        .send()
        .await?;
    let bucket = eb
        .create_storage_location()
        .send()
        .await?
        .s3_bucket()
        .unwrap_or_default()
        .to_string();
    let first = serde_json::json!({"AWSEBDockerrunVersion": "1", "Image": {"Name": "public.ecr.aws/nginx/nginx:1.27"}, "Ports": [{"ContainerPort": 80}]});
    s3.put_object()
        .bucket(&bucket)
        .key("manual/v1.json")
        .body(first.to_string().into_bytes().into())
        .send()
        .await?;
    eb.create_application_version()
        .application_name("shop")
        .version_label("v1")
        .source_bundle(
            S3Location::builder()
                .s3_bucket(&bucket)
                .s3_key("manual/v1.json")
                .build(),
        )
        .send()
        .await?;
    eb.create_environment()
        .application_name("shop")
        .environment_name("shop-prod")
        .solution_stack_name("64bit Amazon Linux 2023 v4.3.0 running Docker")
        .version_label("v1")
        .send()
        .await?;
    Ok(())
}

/// Bytes of the S3 object behind an application version.
async fn uploaded(
    eb: &aws_sdk_elasticbeanstalk::Client,
    s3: &aws_sdk_s3::Client,
    label: &str,
) -> anyhow::Result<u64> {
    let v = eb
        .describe_application_versions()
        .application_name("shop")
        .version_labels(label)
        .send()
        .await?;
    let sb = v
        .application_versions()
        .first()
        .and_then(|v| v.source_bundle())
        .context("the version has a bundle")?;
    let head = s3
        .head_object()
        .bucket(sb.s3_bucket().unwrap_or_default())
        .key(sb.s3_key().unwrap_or_default())
        .send()
        .await?;
    Ok(head.content_length().unwrap_or_default() as u64)
}

/// The tree, generated once per size and reused: returns (all bytes, bytes
/// the image copies).
fn ensure_tree(root: &Path, mb: u64) -> anyhow::Result<(u64, u64)> {
    let marker = root.join(".fastdeploy-bench-tree");
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Some((version, sizes)) = text.trim().split_once(' ')
        && version == TREE_VERSION
        && let Some((total, shipped)) = sizes.split_once(' ')
    {
        return Ok((total.parse()?, shipped.parse()?));
    }
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    let mut rng = fastrand::Rng::with_seed(1536);
    let scale = mb as f64 / DEFAULT_MB as f64;
    let n = |full: f64| ((full * scale).round() as usize).max(1);
    let (mut total, mut shipped) = (0u64, 0u64);
    let mut write = |path: &Path,
                     len: usize,
                     text: bool,
                     ships: bool,
                     rng: &mut fastrand::Rng|
     -> anyhow::Result<()> {
        std::fs::create_dir_all(path.parent().unwrap())?;
        let data: Vec<u8> = if text {
            (0..len)
                .map(|i| {
                    if i % 60 == 59 {
                        b'\n'
                    } else {
                        b"abcdefghij klmnopqrstuvwxyz_()=:.0123456789"[rng.usize(..43)]
                    }
                })
                .collect()
        } else {
            let mut v = vec![0u8; len];
            rng.fill(&mut v);
            v
        };
        std::fs::write(path, &data)?;
        total += len as u64;
        if ships {
            shipped += len as u64;
        }
        Ok(())
    };
    // Kept out by .dockerignore: a virtualenv, node_modules, git history.
    for pkg in 0..n(240.0) {
        for m in 0..40 {
            let len = 1000 + rng.usize(..6000);
            write(
                &root.join(format!(
                    ".venv/lib/python3.12/site-packages/pkg{pkg}/mod{m}.py"
                )),
                len,
                true,
                false,
                &mut rng,
            )?;
        }
    }
    for pkg in 0..n(600.0) {
        for m in 0..40 {
            let len = 500 + rng.usize(..5000);
            write(
                &root.join(format!("node_modules/pkg{pkg}/lib/file{m}.js")),
                len,
                true,
                false,
                &mut rng,
            )?;
        }
    }
    write(
        &root.join(".git/objects/pack/pack-0.pack"),
        (100.0 * scale * 1048576.0) as usize,
        false,
        false,
        &mut rng,
    )?;
    // What the image copies.
    for module in 0..300 {
        let len = 2000 + rng.usize(..8000);
        write(
            &root.join(format!("app/pkg{}/module{module}.py", module % 12)),
            len,
            true,
            true,
            &mut rng,
        )?;
    }
    for c in 0..150 {
        let len = 1000 + rng.usize(..4000);
        write(
            &root.join(format!("web/src/component{c}.tsx")),
            len,
            true,
            true,
            &mut rng,
        )?;
    }
    for (i, size) in [100u64, 60].into_iter().enumerate() {
        write(
            &root.join(format!("data/train-{i}.parquet")),
            (size as f64 * scale * 1048576.0) as usize,
            false,
            true,
            &mut rng,
        )?;
    }
    std::fs::write(root.join("requirements.txt"), "django==5.1\n")?;
    std::fs::write(
        root.join("Dockerfile"),
        "FROM python:3.12-slim\nCOPY . /app\nRUN pip install -r /app/requirements.txt\nEXPOSE 8000\n",
    )?;
    std::fs::write(root.join(".dockerignore"), DOCKERIGNORE)?;
    std::fs::create_dir_all(root.join(".ebextensions"))?;
    std::fs::write(
        root.join(".ebextensions/01-env.config"),
        "option_settings:\n  aws:elasticbeanstalk:application:environment:\n    MODE: production\n",
    )?;
    std::fs::write(&marker, format!("{TREE_VERSION} {total} {shipped}\n"))?;
    Ok((total, shipped))
}
