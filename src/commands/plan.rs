//! `conduit migrate plan`: prints what the pending migrations would lock,
//! rewrite and scan, as a table or JSON; exit 3 with `--fail-on-risk`
//! when anything is flagged. The scratch database it measures on is
//! dropped on every path: success, error, SIGINT or SIGTERM.

use std::process::ExitCode;

use diesel_async::AsyncPgConnection;

use super::CommandError;
use crate::cli::PlanFormat;
use crate::db;
use crate::db::endpoint::Endpoint;
use crate::db::migrations::plan::{self, Plan, PlanError, StatementPlan};
use crate::db::migrations::MigrationSet;
use crate::db::migrations::ScratchDatabase;
use crate::db::settings::DatabaseSettings;
use crate::error_chain::Chain;

/// The exit status of `--fail-on-risk` when a statement is flagged.
const RISKY: u8 = 3;

pub async fn run(
    mut live: AsyncPgConnection,
    database: &DatabaseSettings,
    set: &MigrationSet,
    format: PlanFormat,
    fail_on_risk: bool,
) -> Result<ExitCode, CommandError> {
    let Some((state, texts)) = plan::pending(&live, set).await? else {
        let version = crate::db::migrations::schema_state(&live, &set.catalog()?)
            .await
            .map_err(PlanError::Live)?;
        let version = version.version().map(str::to_owned);
        print(
            &Plan {
                schema_version: version,
                migrations: Vec::new(),
                risky: false,
                elapsed_ms: 0,
            },
            format,
        );
        return Ok(ExitCode::SUCCESS);
    };
    let endpoint = &database.migrations;
    let url = |e: &Endpoint| e.connection_url(&database.application_name);
    let mut admin = db::connect(&url(endpoint), &endpoint.tls)
        .await
        .map_err(PlanError::ConnectScratch)?;
    let scratch = ScratchDatabase::create(&mut admin, "conduit_plan")
        .await
        .map_err(PlanError::from)?;
    let name = scratch.name.clone();
    eprintln!("migrate plan: measuring on the scratch database {name} (dropped when done)");
    let scratch_endpoint = endpoint.with_database(&name);
    let work = async {
        let mut conn = db::connect(&url(&scratch_endpoint), &scratch_endpoint.tls)
            .await
            .map_err(PlanError::ConnectScratch)?;
        plan::make(&mut live, &mut conn, &state, &texts).await
    };
    let outcome = tokio::select! {
        outcome = work => outcome,
        () = interrupted() => Err(PlanError::Interrupted),
    };
    if let Err(error) = scratch.drop_with(&mut admin).await {
        eprintln!(
            "conduit: could not drop the scratch database {name}: {}; drop it with DROP DATABASE \"{name}\" WITH (FORCE)",
            Chain(&error)
        );
    }
    let plan = outcome?;
    print(&plan, format);
    Ok(if fail_on_risk && plan.risky {
        ExitCode::from(RISKY)
    } else {
        ExitCode::SUCCESS
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};

    let mut terminate = signal(SignalKind::terminate()).ok();
    let terminated = async {
        match terminate.as_mut() {
            Some(terminate) => {
                terminate.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}

fn print(plan: &Plan, format: PlanFormat) {
    match format {
        PlanFormat::Json => match serde_json::to_string_pretty(plan) {
            Ok(json) => println!("{json}"),
            Err(error) => eprintln!("conduit: could not write the plan as JSON: {error}"),
        },
        PlanFormat::Text => print!("{}", text(plan)),
    }
}

/// The plan as a table a person reads: one row per lock a statement takes,
/// its risks and their safe alternatives below it.
pub fn text(plan: &Plan) -> String {
    use std::fmt::Write as _;

    let version = plan.schema_version.as_deref().unwrap_or("none");
    let mut out = String::new();
    if plan.migrations.is_empty() {
        let _ = writeln!(out, "nothing pending: the schema is at {version}");
        return out;
    }
    let _ = writeln!(
        out,
        "live schema at {version}; {} pending; measured in {} ms on a scratch database{}",
        plan.migrations.len(),
        plan.elapsed_ms,
        if plan.risky {
            "; RISKS FOUND"
        } else {
            "; no risk found"
        }
    );
    for migration in &plan.migrations {
        let _ = writeln!(
            out,
            "\n{} ({}{})",
            migration.name,
            if migration.transactional {
                "in a transaction"
            } else {
                "not in a transaction"
            },
            if migration.contract { ", contract" } else { "" }
        );
        let width = migration
            .statements
            .iter()
            .flat_map(|s| &s.locks)
            .map(|l| l.relation.chars().count() + 1 + l.mode.len())
            .max()
            .unwrap_or(0)
            .max("lock (relation mode)".len());
        let _ = writeln!(
            out,
            "  {:<3} {:<42} {:<width$} {:<8} {:<7} {:>10} {:>10}  conflicting sessions now",
            "#", "statement", "lock (relation mode)", "rewrite", "scan", "size", "est. rows"
        );
        for statement in &migration.statements {
            rows(&mut out, statement, width);
        }
    }
    out
}

fn rows(out: &mut String, statement: &StatementPlan, width: usize) {
    use std::fmt::Write as _;

    let sql: String = statement
        .sql
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let sql = if sql.chars().count() > 42 {
        format!("{}...", sql.chars().take(39).collect::<String>())
    } else {
        sql
    };
    let measured = if statement.measured {
        ""
    } else {
        " (documented, not measured)"
    };
    let mut first = true;
    let locks: Vec<_> = if statement.locks.is_empty() {
        vec![None]
    } else {
        statement.locks.iter().map(Some).collect()
    };
    for lock in locks {
        let shown_sql = if first { sql.as_str() } else { "" };
        let index = if first {
            statement.index.to_string()
        } else {
            String::new()
        };
        first = false;
        let Some(lock) = lock else {
            let _ = writeln!(
                out,
                "  {index:<3} {shown_sql:<42} {:<width$}{measured}",
                "-"
            );
            continue;
        };
        let relation = &lock.relation;
        let table = statement.tables.iter().find(|t| &t.relation == relation);
        let rewrite = if statement.rewrites.contains(relation) {
            "yes"
        } else {
            "-"
        };
        let scan = if statement.scans.iter().any(|s| &s.relation == relation) {
            "yes"
        } else {
            "-"
        };
        let size = table
            .and_then(|t| t.size_bytes)
            .map_or_else(|| "new".to_owned(), bytes);
        let rows = table
            .and_then(|t| t.estimated_rows)
            .map_or_else(|| "-".to_owned(), |r| r.to_string());
        let conflicts = table
            .map(|t| {
                t.conflicts
                    .iter()
                    .map(|h| {
                        format!(
                            "pid {} {:?} {} since {}",
                            h.pid, h.application_name, h.mode, h.since
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "-".to_owned());
        let _ = writeln!(
            out,
            "  {index:<3} {shown_sql:<42} {:<width$} {rewrite:<8} {scan:<7} {size:>10} {rows:>10}  {conflicts}{measured}",
            format!("{relation} {}", lock.mode)
        );
    }
    for risk in &statement.risks {
        let _ = writeln!(out, "      RISK {}: {}", risk.kind, risk.message);
        let _ = writeln!(out, "        instead: {}", risk.safe_alternative);
    }
}

fn bytes(n: i64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
