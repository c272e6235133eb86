//! Filler text: words drawn from a fixed list, so articles and comments
//! have realistic lengths without storing any real text.

use rand::Rng;

const WORDS: &[&str] = &[
    "actix",
    "async",
    "backend",
    "benchmark",
    "borrow",
    "cache",
    "cargo",
    "channel",
    "checksum",
    "cluster",
    "commit",
    "compile",
    "concurrency",
    "connection",
    "crate",
    "database",
    "deadlock",
    "deploy",
    "diesel",
    "engine",
    "error",
    "event",
    "feature",
    "future",
    "garbage",
    "handler",
    "index",
    "iterator",
    "journal",
    "kernel",
    "latency",
    "lifetime",
    "lock",
    "macro",
    "memory",
    "migration",
    "module",
    "mutex",
    "network",
    "option",
    "ownership",
    "packet",
    "parser",
    "pipeline",
    "pointer",
    "pool",
    "postgres",
    "process",
    "protocol",
    "query",
    "queue",
    "replica",
    "request",
    "result",
    "router",
    "runtime",
    "rust",
    "schema",
    "server",
    "service",
    "session",
    "shard",
    "signal",
    "socket",
    "stack",
    "statement",
    "stream",
    "struct",
    "table",
    "task",
    "thread",
    "throughput",
    "token",
    "trait",
    "transaction",
    "tuple",
    "type",
    "vacuum",
    "vector",
    "worker",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "with",
    "for",
    "on",
    "when",
    "every",
    "how",
    "why",
    "we",
    "our",
    "this",
    "that",
    "fast",
    "safe",
    "simple",
    "small",
];

pub fn word(rng: &mut impl Rng) -> &'static str {
    WORDS[rng.random_range(0..WORDS.len())]
}

/// `count` words separated by spaces.
pub fn words(rng: &mut impl Rng, count: usize) -> String {
    let mut out = String::with_capacity(count * 8);
    for i in 0..count {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word(rng));
    }
    out
}

/// Sentences of 6 to 18 words until the text is about `chars` long.
pub fn prose(rng: &mut impl Rng, chars: usize) -> String {
    let mut out = String::with_capacity(chars + 160);
    while out.len() < chars {
        if !out.is_empty() {
            out.push_str(if rng.random_bool(0.15) { "\n\n" } else { " " });
        }
        let count = rng.random_range(6..=18);
        let sentence = words(rng, count);
        let mut letters = sentence.chars();
        if let Some(first) = letters.next() {
            out.extend(first.to_uppercase());
            out.push_str(letters.as_str());
        }
        out.push('.');
    }
    out
}
