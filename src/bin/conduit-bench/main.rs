//! Tools for `make bench`: load a realistic dataset, and time one password
//! hash with the server's parameters. Not part of the server binary.

mod dataset;
mod text;

use std::time::Instant;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "conduit-bench",
    about = "Dataset and measurements for `make bench`"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fill a migrated database with users, follows, articles, tags,
    /// favorites and comments; prints what it loaded and how fast, as JSON.
    Dataset(dataset::Args),
    /// Time argon2id hashes with the server's parameters: the median of one
    /// hash at a time, then how many hashes per second one thread per core
    /// manage together (what memory bandwidth leaves of the cores); JSON.
    HashTime {
        #[arg(long, default_value_t = 15)]
        runs: usize,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Dataset(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = runtime.block_on(dataset::load(args))?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::HashTime { runs } => {
            let mut times = Vec::with_capacity(runs);
            for _ in 0..runs.max(1) {
                let started = Instant::now();
                conduit::auth::password::hash_blocking("benchmark password")?;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let started = Instant::now();
            let threads: Vec<_> = (0..cores)
                .map(|_| {
                    std::thread::spawn(move || {
                        (0..runs).try_for_each(|_| {
                            conduit::auth::password::hash_blocking("benchmark password").map(drop)
                        })
                    })
                })
                .collect();
            for thread in threads {
                thread.join().map_err(|_| "a hashing thread panicked")??;
            }
            let parallel_per_second = (cores * runs) as f64 / started.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::json!({
                    "runs": times.len(),
                    "median_ms": median,
                    "min_ms": times[0],
                    "cores": cores,
                    "all_cores_per_second": parallel_per_second,
                })
            );
        }
    }
    Ok(())
}
