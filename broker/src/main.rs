//! `oxbow`: a Kafka-protocol broker on its own log engine.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use oxbow_storage::Storage;

mod admin_state;
mod broker;
mod config;
mod fetch_session;
mod groups;
mod handlers;
mod internal_topics;
mod producer_ids;
mod server;
mod topics;
mod txn;

/// Keeps a hostile array length in a request from aborting the process (see the module docs).
#[global_allocator]
static ALLOC: oxbow_wire::alloc_guard::GuardedAlloc = oxbow_wire::alloc_guard::GuardedAlloc;

#[derive(Parser, Debug)]
#[command(
    name = "oxbow",
    version,
    about = "A Kafka-compatible broker in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the broker.
    Serve {
        /// A Kafka `server.properties` file.
        config: Option<PathBuf>,
        /// `key=value` with Kafka's config key names; beats the file and the environment.
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Development mode: auto-create on, no initial rebalance delay, acks from page cache.
        #[arg(long)]
        dev: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OXBOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    oxbow_wire::alloc_guard::retain_freed_memory();
    match cli.command {
        Command::Serve {
            config,
            overrides,
            dev,
        } => {
            let cfg = match config::BrokerConfig::load(
                config.as_deref(),
                std::env::vars(),
                &overrides,
                dev,
            ) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("oxbow: configuration error: {e}");
                    return ExitCode::from(2);
                }
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("oxbow")
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("oxbow: cannot start runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(serve(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("oxbow: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// How often free heap memory goes back to the kernel: request buffers are kept for reuse
/// under load (see `alloc_guard::retain_freed_memory`), and returned this long after a burst.
const RELEASE_FREED_MEMORY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

async fn release_freed_memory_periodically() {
    let first = tokio::time::Instant::now() + RELEASE_FREED_MEMORY_INTERVAL;
    let mut tick = tokio::time::interval_at(first, RELEASE_FREED_MEMORY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if tokio::task::spawn_blocking(oxbow_wire::alloc_guard::release_freed_memory)
            .await
            .is_err()
        {
            return; // the runtime is shutting down
        }
    }
}

/// Raises the soft open-file limit to the hard one, as Kafka's start scripts expect the
/// environment to: every segment keeps its files open, and a broker with thousands of
/// partitions would otherwise fail to start at the default soft limit of 1024.
fn raise_open_file_limit() {
    match rustix::process::getrlimit(rustix::process::Resource::Nofile) {
        limit if limit.current < limit.maximum => {
            let raised = rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            match rustix::process::setrlimit(rustix::process::Resource::Nofile, raised) {
                Ok(()) => {
                    tracing::info!(from = ?limit.current, to = ?limit.maximum, "raised the open-file limit")
                }
                Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
            }
        }
        _ => {}
    }
}

async fn serve(cfg: config::BrokerConfig) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    raise_open_file_limit();
    let durability = match cfg.durability {
        config::DurabilityMode::Fsync => oxbow_storage::Durability::Fsync,
        config::DurabilityMode::Relaxed {
            flush_interval_messages,
            flush_interval_ms,
        } => oxbow_storage::Durability::Relaxed {
            flush_interval_messages,
            flush_interval_ms,
        },
    };
    tracing::info!(?durability, log_dirs = ?cfg.log_dirs, "starting");
    let (storage, report) = oxbow_storage::LogManager::open(oxbow_storage::StorageConfig {
        log_dirs: cfg.log_dirs.clone(),
        durability,
        retention_check_interval_ms: cfg.retention_check_interval_ms,
        scrub_interval_ms: cfg.scrub_interval_ms,
        scrub_bytes_per_sec: cfg.scrub_bytes_per_sec,
    })?;
    for damaged in report.damaged() {
        tracing::warn!(report = ?damaged, "recovery dropped data that was not intact");
    }
    tracing::info!(
        partitions = report.partitions.len(),
        unclean_dirs = report.unclean_dirs.len(),
        "storage recovered"
    );
    let broker = broker::Broker::open(cfg, storage.clone())?;
    storage.start_background();
    let groups = groups::Groups::open(&broker)?;
    let _ = broker.groups.set(groups);
    tokio::spawn(groups::Groups::run_ticker(broker.clone()));
    let txns = txn::Transactions::open(&broker)?;
    let _ = broker.txns.set(txns);
    txn::Transactions::resume(&broker);
    tokio::spawn(txn::Transactions::run_ticker(broker.clone()));
    tokio::spawn(release_freed_memory_periodically());
    let bound = server::bind(&broker).await?;
    let advertised: Vec<_> = bound.iter().map(|b| b.advertised.clone()).collect();
    let _ = broker.advertised.set(advertised.clone());
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(server::serve(broker.clone(), bound, shutdown_rx));

    // The one stable line tools and tests wait for.
    let line: Vec<String> = advertised
        .iter()
        .map(|a| format!("{}://{}:{}", a.name, a.host, a.port))
        .collect();
    println!("oxbow ready {}", line.join(" "));
    tracing::info!(
        startup_ms = started.elapsed().as_millis() as u64,
        cluster_id = %broker.cluster_id,
        node_id = broker.config.node_id,
        "ready"
    );

    wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = shutdown_tx.send(true);
    let _ = server.await;
    storage.shutdown()?;
    tracing::info!("clean shutdown complete");
    let _ = Arc::strong_count(&broker);
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
